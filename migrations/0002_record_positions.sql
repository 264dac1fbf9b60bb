-- A commands-topic record may carry several commands (the gateway packs what arrives
-- together for one partition into one record), so a command's place in Kafka order is
-- (partition, offset, position within the record).
ALTER TABLE requests ADD COLUMN kafka_seq int NOT NULL DEFAULT 0;

ALTER TABLE dead_letters ADD COLUMN kafka_seq int NOT NULL DEFAULT 0;
ALTER TABLE dead_letters DROP CONSTRAINT dead_letters_pkey;
ALTER TABLE dead_letters ADD PRIMARY KEY (topic, kafka_partition, kafka_offset, kafka_seq);
