DROP TABLE events;
DROP SEQUENCE events_pending;
DROP TABLE event_sequences;
