-- The Kafka timestamp of each intent's first record (-1: unknown). Offsets alone do not name
-- a record: a recreated topic, or a broker that lost its log, numbers records from 0 again,
-- and an intent of the earlier life must not be replayed over the new records (the sink
-- would wait for an offset the new log may never reach). See sinks/batching.py.
ALTER TABLE {db}.{local:sink_batches}{on_cluster}
    ADD COLUMN IF NOT EXISTS FirstTimestampMs Int64 DEFAULT -1;
-- In a cluster the Distributed table needs the column too (on one node this is the same
-- table and the statement does nothing).
ALTER TABLE {db}.sink_batches{on_cluster}
    ADD COLUMN IF NOT EXISTS FirstTimestampMs Int64 DEFAULT -1
