-- Consumers and schedulers share partitions through Kafka's consumer groups now (the
-- broker's coordinator evicts a dead member): the membership table they kept in PostgreSQL
-- while the local broker could not is gone. The offset fence (`consumer_offsets`) stays.
DROP TABLE consumer_members;
