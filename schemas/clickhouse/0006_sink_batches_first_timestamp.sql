-- The Kafka timestamp of each intent's first record (-1: unknown). Offsets alone do not name
-- a record: a recreated topic, or a broker that lost its log, numbers records from 0 again,
-- and an intent of the earlier life must not be replayed over the new records (the sink
-- would wait for an offset the new log may never reach). See sinks/batching.py.
ALTER TABLE {db}.{local:sink_batches}{on_cluster}
    ADD COLUMN IF NOT EXISTS FirstTimestampMs Int64 DEFAULT -1;
-- In a cluster the Distributed table needs the column too (one node has no such table; the
-- sharded layout re-creates its tables of the plain names after migrating).
{cluster}ALTER TABLE {db}.sink_batches{on_cluster}
{cluster}    ADD COLUMN IF NOT EXISTS FirstTimestampMs Int64 DEFAULT -1
