DROP TABLE pending_events;
DROP TABLE events;
DROP TABLE event_sequences;
