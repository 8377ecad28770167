DROP TABLE pending_events;
DROP TABLE event_prune_marks;
DROP TABLE events;
DROP TABLE event_sequences;
