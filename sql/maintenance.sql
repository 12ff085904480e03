-- Bounded maintenance: stale expiry and purge in batches, their scheduled
-- forms, bad input, privileges, index advice and bounded run history.

-- Five stale sessions, two already terminal, one fresh.
CREATE TABLE sessions (
    id         bigint PRIMARY KEY,
    status     text NOT NULL,
    created_at timestamptz NOT NULL,
    tenant     int NOT NULL DEFAULT 1,
    changes    int NOT NULL DEFAULT 0
);
-- Counts how often each row was expired: nothing may be expired twice.
CREATE FUNCTION count_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NEW.status NOT IN ('active', 'pending') THEN
        NEW.changes := OLD.changes + 1;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER sessions_changes BEFORE UPDATE ON sessions FOR EACH ROW EXECUTE FUNCTION count_change();
-- Puts the sessions back as they started.
CREATE PROCEDURE reset_sessions() LANGUAGE sql AS $$
    UPDATE sessions SET changes = 0, tenant = 1,
           status = CASE id WHEN 3 THEN 'pending' WHEN 6 THEN 'completed' WHEN 7 THEN 'failed' ELSE 'active' END
$$;
INSERT INTO sessions (id, status, created_at) VALUES
    (1, 'active',    now() - interval '3 hours'),
    (2, 'active',    now() - interval '4 hours'),
    (3, 'pending',   now() - interval '5 hours'),
    (4, 'active',    now() - interval '6 hours'),
    (5, 'active',    now() - interval '7 hours'),
    (6, 'completed', now() - interval '8 hours'),
    (7, 'failed',    now() - interval '9 hours'),
    (8, 'active',    now());

-- One call is one batch: 3, then 2, then nothing is left.
SELECT foreman.expire_stale('sessions', '1 hour', batch_size => 3) AS batch_1;
SELECT foreman.expire_stale('sessions', '1 hour', batch_size => 3) AS batch_2;
SELECT foreman.expire_stale('sessions', '1 hour', batch_size => 3) AS batch_3;
-- Oldest first; terminal rows untouched; the fresh row untouched; each
-- expired row changed exactly once.
SELECT id, status, changes FROM sessions ORDER BY id;

-- filter: only tenant 2's stale rows.
CALL reset_sessions();
UPDATE sessions SET tenant = 2 WHERE id IN (2, 4);
SELECT foreman.expire_stale('sessions', '1 hour', filter => 'tenant = 2') AS tenant_2_expired;
SELECT id, tenant, status FROM sessions WHERE id <= 5 ORDER BY id;
-- A filter may hold comments, strings with ";" and stable functions.
SELECT foreman.expire_stale('sessions', '1 hour', filter => $$tenant = 1 AND status <> 'a;b' -- the rest$$) AS tenant_1_expired;
SELECT count(*) FILTER (WHERE status = 'stale_expired') AS expired, max(changes) AS max_changes FROM sessions;

-- Other terminal statuses, another value to set.
CALL reset_sessions();
SELECT foreman.expire_stale('sessions', '1 hour', terminal_statuses => '{active,completed,failed}',
                            set_status => 'timed_out') AS only_pending;
SELECT id, status FROM sessions ORDER BY id;

-- A multi-column primary key, mixed-case names, a varchar status, a date.
CREATE TABLE "Order Lines" (
    "order"   int,
    line      int,
    "State"   varchar(20) NOT NULL,
    placed_on date NOT NULL,
    PRIMARY KEY ("order", line)
);
INSERT INTO "Order Lines" SELECT o, l, 'open', current_date - 10 FROM generate_series(1, 2) o, generate_series(1, 3) l;
INSERT INTO "Order Lines" VALUES (3, 1, 'open', current_date);
SELECT foreman.expire_stale('"Order Lines"', '1 day', status_column => 'State', timestamp_column => 'placed_on',
                            set_status => 'abandoned', batch_size => 4) AS first,
       foreman.expire_stale('"Order Lines"', '1 day', status_column => 'State', timestamp_column => 'placed_on',
                            set_status => 'abandoned', batch_size => 4) AS second;
SELECT "State", count(*) FROM "Order Lines" GROUP BY 1 ORDER BY 1;

-- No primary key: a unique index on NOT NULL columns is the key; an enum status.
CREATE TYPE ticket_state AS ENUM ('open', 'closed', 'expired');
CREATE TABLE tickets (ref text NOT NULL, state ticket_state NOT NULL, opened timestamp NOT NULL);
CREATE UNIQUE INDEX tickets_ref ON tickets (ref);
INSERT INTO tickets VALUES ('a', 'open', localtimestamp - interval '2 days'), ('b', 'closed', localtimestamp - interval '2 days'),
                           ('c', 'open', localtimestamp);
-- Terminal statuses that are no labels of the enum could never match: ignored.
SELECT foreman.expire_stale('tickets', '1 day', status_column => 'state', timestamp_column => 'opened',
                            terminal_statuses => '{closed,completed}', set_status => 'expired') AS expired;
SELECT ref, state FROM tickets ORDER BY ref;

-- A partitioned table (its key includes the partition key).
CREATE TABLE part_events (id bigint, status text NOT NULL, at timestamptz NOT NULL, PRIMARY KEY (id, at))
    PARTITION BY RANGE (at);
CREATE TABLE part_events_old PARTITION OF part_events FOR VALUES FROM ('2000-01-01') TO ('2020-01-01');
CREATE TABLE part_events_new PARTITION OF part_events FOR VALUES FROM ('2020-01-01') TO (MAXVALUE);
INSERT INTO part_events SELECT i, 'open', CASE WHEN i <= 3 THEN timestamptz '2019-06-01' ELSE now() - interval '2 days' END
  FROM generate_series(1, 6) i;
INSERT INTO part_events VALUES (7, 'open', now());
SELECT foreman.expire_stale('part_events', '1 day', timestamp_column => 'at', batch_size => 4) AS first,
       foreman.expire_stale('part_events', '1 day', timestamp_column => 'at', batch_size => 4) AS second;
SELECT tableoid::regclass AS partition, status, count(*) FROM part_events GROUP BY 1, 2 ORDER BY 1, 2;
-- Index advice for a partitioned table: not CONCURRENTLY, which PostgreSQL cannot do there.
SELECT foreman.schedule_expiry('expire_part_events', 'part_events', '1 day', timestamp_column => 'at', enabled => false) > 0 AS scheduled;
-- Without it, each batch reads the whole table (rows are found by key there).
SELECT batches, index_name, advice FROM foreman.maintenance_advice WHERE job_name = 'expire_part_events';
SELECT foreman.unschedule('expire_part_events');

-- The batches of a run (foreman.run_maintenance) go on where the previous
-- one stopped: it hands each batch the resume point the last one returned.
-- With an index on the timestamp, in timestamp order after the last
-- (timestamp, key) locked: ties on a date are taken in key order, none twice,
-- none left out. A trigger notes the batch that expired each row.
CREATE TABLE visits (id int PRIMARY KEY, status text NOT NULL, seen date NOT NULL, batch int);
CREATE FUNCTION note_batch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'stale_expired' THEN
        NEW.batch := current_setting('regress.batch')::int;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER visits_batch BEFORE UPDATE ON visits FOR EACH ROW EXECUTE FUNCTION note_batch();
INSERT INTO visits (id, status, seen)
SELECT i, CASE WHEN i IN (5, 9) THEN 'completed' ELSE 'open' END, date '2000-01-01' + (13 - i) / 4
  FROM generate_series(1, 12) i;
INSERT INTO visits (id, status, seen) VALUES (13, 'open', current_date);
CREATE INDEX visits_open ON visits (seen) WHERE status NOT IN ('completed', 'stale_expired');
-- Batch after batch until a batch returns no resume point, as a run does.
CREATE FUNCTION batches_of(target regclass, ts name, batch_size int)
RETURNS TABLE (batch int, changed bigint, resume text[]) LANGUAGE plpgsql AS $$
DECLARE
    b record;
BEGIN
    batch := 0;
    LOOP
        batch := batch + 1;
        PERFORM set_config('regress.batch', batch::text, true);
        SELECT * INTO b FROM foreman._expiry_batch(target, '1 day', 'status', ts, '{completed}', 'stale_expired',
                                                   batch_size, NULL, resume);
        changed := b.changed;
        resume := b.next_resume;
        RETURN NEXT;
        EXIT WHEN resume IS NULL OR batch >= 20;
    END LOOP;
END $$;
SET datestyle = 'Postgres, DMY'; -- resume points do not depend on it
SELECT * FROM batches_of('visits', 'seen', 4);
RESET datestyle;
SELECT id, CASE WHEN seen = current_date THEN 'today' ELSE seen::text END AS seen, status, batch
  FROM visits ORDER BY visits.seen, id;
-- A date has many rows a day: the advised index adds the key, so that a
-- batch starts exactly where the last one stopped.
DROP INDEX visits_open;
SELECT foreman.schedule_expiry('expire_visits', 'visits', '1 day', timestamp_column => 'seen',
                               terminal_statuses => '{completed}', enabled => false) > 0 AS scheduled;
-- A job whose table changed under it gets no advice, and says why.
ALTER TABLE visits DROP COLUMN seen;
SELECT batches, index_name, advice FROM foreman.maintenance_advice WHERE job_name = 'expire_visits';
SELECT foreman.unschedule('expire_visits');
-- Without an index on the timestamp, a run sweeps the heap: a range of blocks
-- a batch, as many as should hold about batch_size stale rows, up to where
-- the table ended when the run began.
CREATE TABLE readings (id int PRIMARY KEY, status text NOT NULL, taken timestamptz NOT NULL, payload text NOT NULL);
INSERT INTO readings
SELECT i, 'open', CASE WHEN i % 3 = 0 THEN now() ELSE timestamptz '2000-01-01' + i * interval '1 minute' END,
       repeat('x', 200)
  FROM generate_series(1, 300) i;
ANALYZE readings;
SELECT * FROM batches_of('readings', 'taken', 100);
SELECT count(*) FILTER (WHERE status = 'stale_expired') AS expired, count(*) FILTER (WHERE status = 'open') AS fresh
  FROM readings;
-- A resume point is the previous batch's, or NULL; anything else is refused.
\set VERBOSITY terse
SELECT * FROM foreman._expiry_batch('readings', '1 day', 'status', 'taken', '{}', 'stale_expired', 10, NULL,
                                    '{sweep,0,10}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM foreman._expiry_batch('readings', '1 day', 'status', 'taken', '{}', 'stale_expired', 10, NULL,
                                    '{keyset,2000-01-01,not-a-number}');
\echo :LAST_ERROR_SQLSTATE
-- A partitioned table is never swept (a ctid names a row of one partition only).
SELECT * FROM foreman._expiry_batch('part_events', '1 day', 'status', 'at', '{}', 'stale_expired', 10, NULL,
                                    '{sweep,0,10,5}');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default

-- Bad input: a clear error with a SQLSTATE, and nothing changes.
CALL reset_sessions();
SELECT count(*) FILTER (WHERE status = 'active') AS active_before FROM sessions;
\set VERBOSITY terse
SELECT foreman.expire_stale('sessions', '1 hour', status_column => 'state');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.expire_stale('sessions', '1 hour', timestamp_column => 'ctid');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.expire_stale('sessions', '1 hour', status_column => 'tenant');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.expire_stale('sessions', '1 hour', timestamp_column => 'status');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.expire_stale('sessions', '1 hour', batch_size => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.expire_stale('sessions', '-1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.expire_stale('sessions', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.expire_stale('sessions', '1 hour', terminal_statuses => '{completed,NULL}');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.expire_stale('tickets', '1 day', status_column => 'state', timestamp_column => 'opened');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE no_key (status text, created_at timestamptz);
CREATE UNIQUE INDEX no_key_nullable ON no_key (status);
SELECT foreman.expire_stale('no_key', '1 hour');
\echo :LAST_ERROR_SQLSTATE
CREATE VIEW sessions_view AS SELECT * FROM sessions;
SELECT foreman.expire_stale('sessions_view', '1 hour');
\echo :LAST_ERROR_SQLSTATE
-- The filter is one condition over the target's own columns.
SELECT foreman.expire_stale('sessions', '1 hour', filter => 'true; DELETE FROM sessions');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.expire_stale('sessions', '1 hour', filter => 'true) OR (true');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.expire_stale('sessions', '1 hour', filter => 'true) --');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.expire_stale('sessions', '1 hour',
    filter => 'id IN (WITH gone AS (DELETE FROM sessions RETURNING id) SELECT id FROM gone)');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.expire_stale('sessions', '1 hour', filter => 'id IN (SELECT id FROM tickets)');
\echo :LAST_ERROR_SQLSTATE
CREATE FUNCTION forget_everything() RETURNS boolean LANGUAGE sql AS 'DELETE FROM sessions RETURNING true';
SELECT foreman.expire_stale('sessions', '1 hour', filter => 'forget_everything()');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.expire_stale('sessions', '1 hour', filter => 'random() < 0.5');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.expire_stale('sessions', '1 hour', filter => 'no_such_column = 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.expire_stale('sessions', '1 hour', filter => 'tenant');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.expire_stale('sessions', '1 hour', filter => 'tenant = ''unterminated');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.expire_stale('sessions', '1 hour', filter => ' -- nothing');
\echo :LAST_ERROR_SQLSTATE
-- A role without UPDATE on the table.
CREATE ROLE regress_maint_reader LOGIN IN ROLE foreman_user;
GRANT SELECT ON sessions TO regress_maint_reader;
SET ROLE regress_maint_reader;
SELECT foreman.expire_stale('sessions', '1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.purge('sessions', 'created_at', '1 hour');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
\set VERBOSITY default
SELECT count(*) FILTER (WHERE status = 'active') AS active_after, max(changes) AS max_changes FROM sessions;
SELECT count(*) AS sessions_left FROM sessions;
-- The messages in full, with their hints:
SELECT foreman.expire_stale('no_key', '1 hour');
SET ROLE regress_maint_reader;
SELECT foreman.expire_stale('sessions', '1 hour');
RESET ROLE;
-- UPDATE on the status column alone is enough.
GRANT UPDATE (status) ON sessions TO regress_maint_reader;
SET ROLE regress_maint_reader;
SELECT foreman.expire_stale('sessions', '1 hour', batch_size => 1) AS expired_by_reader;
RESET ROLE;

-- purge: the same shape with DELETE.
CREATE TABLE audit_log (id bigserial PRIMARY KEY, at timestamptz NOT NULL, kind text NOT NULL);
INSERT INTO audit_log (at, kind)
SELECT now() - i * interval '1 day', CASE WHEN i % 2 = 0 THEN 'debug' ELSE 'info' END FROM generate_series(0, 9) i;
SELECT foreman.purge('audit_log', 'at', '3 days', batch_size => 4) AS batch_1,
       foreman.purge('audit_log', 'at', '3 days', batch_size => 4) AS batch_2;
SELECT count(*) AS left_after_purge, min(at) > now() - interval '4 days' AS oldest_recent FROM audit_log;
SELECT foreman.purge('audit_log', 'at', '0', filter => $$kind = 'debug'$$) AS debug_purged;
SELECT kind, count(*) FROM audit_log GROUP BY kind ORDER BY kind;
\set VERBOSITY terse
SELECT foreman.purge('audit_log', 'created', '1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.purge('audit_log', 'kind', '1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.purge('audit_log', 'at', '1 day', batch_size => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.purge('no_key', 'created_at', '1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.purge('audit_log', 'at', '1 day', filter => '1 = 1; TRUNCATE audit_log');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.purge('audit_log', 'at', '1 day',
    filter => 'id IN (WITH x AS (UPDATE sessions SET tenant = 0 RETURNING id) SELECT id FROM x)');
\echo :LAST_ERROR_SQLSTATE
-- DELETE without UPDATE: the row locks need UPDATE on one column.
GRANT SELECT, DELETE ON audit_log TO regress_maint_reader;
SET ROLE regress_maint_reader;
SELECT foreman.purge('audit_log', 'at', '1 day');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
\set VERBOSITY default
SELECT count(*) AS audit_rows_still FROM audit_log;
SELECT count(*) FILTER (WHERE tenant = 0) AS sessions_touched FROM sessions;

-- Scheduled expiry: a job of kind 'expiry' in tier slow, whose runs commit
-- batch after batch. No index serves the stale rows yet: a NOTICE says which.
CALL reset_sessions();
SELECT now() AS t0 \gset
SELECT foreman.schedule_expiry('expire_sessions', 'sessions', '1 hour', schedule => '1 hour',
                               batch_size => 2, max_batches => 2) > 0 AS scheduled;
SELECT job_name, kind, tier, schedule, command ~ '^CALL foreman\.run_maintenance\(\d+\)$' AS runs_maintenance
  FROM foreman.jobs WHERE job_name = 'expire_sessions';
SELECT m.kind, m.target, m.older_than, m.status_column, m.timestamp_column, m.set_status, m.batch_size, m.max_batches
  FROM foreman.maintenance m JOIN foreman.jobs j USING (job_id) WHERE j.job_name = 'expire_sessions';
-- The first run: two batches of two (max_batches), recorded as such.
SELECT status, rows_affected, batches FROM foreman.wait_for_run('expire_sessions', :'t0');
-- The next run goes on where it stopped, and stops at a short batch.
SELECT clock_timestamp() AS t1 \gset
SELECT foreman.run_now('expire_sessions');
SELECT status, rows_affected, batches FROM foreman.wait_for_run('expire_sessions', :'t1');
SELECT count(*) FILTER (WHERE status = 'stale_expired') AS expired, max(changes) AS max_changes FROM sessions;

-- With the advised partial index, no NOTICE; a plain index on the timestamp
-- gets one that says why it is not enough. foreman.maintenance_advice says
-- the same of every scheduled expiry and purge the caller can see, whenever
-- asked: how the batches go (sweep, keyset, scan), by which index, and the
-- CREATE INDEX to run when none serves them well.
SELECT job_name, kind, target, batches, index_name, advice FROM foreman.maintenance_advice
 WHERE job_name = 'expire_sessions';
CREATE INDEX sessions_created ON sessions (created_at);
SELECT foreman.schedule_expiry('expire_sessions', 'sessions', '1 hour', schedule => '1 hour', enabled => false) > 0 AS replaced;
SELECT batches, index_name, advice FROM foreman.maintenance_advice WHERE job_name = 'expire_sessions';
CREATE INDEX sessions_stale ON sessions (created_at)
 WHERE status NOT IN ('completed', 'complete', 'failed', 'expired', 'cancelled', 'stale_expired');
SELECT foreman.schedule_expiry('expire_sessions', 'sessions', '1 hour', schedule => '1 hour', enabled => false) > 0 AS replaced;
SELECT batches, index_name, advice FROM foreman.maintenance_advice WHERE job_name = 'expire_sessions';
SELECT count(*) AS jobs_named_expire_sessions FROM foreman.jobs WHERE job_name = 'expire_sessions';

-- Scheduled purge, with a filter, kind 'purge'.
INSERT INTO audit_log (at, kind) SELECT now() - interval '10 days', 'info' FROM generate_series(1, 5);
SELECT now() AS t2 \gset
SELECT foreman.schedule_purge('purge_audit', 'audit_log', 'at', '7 days', schedule => '1 day',
                              filter => $$kind = 'info'$$, batch_size => 2) > 0 AS scheduled;
SELECT job_name, kind, tier FROM foreman.jobs WHERE job_name = 'purge_audit';
SELECT kind, batches, index_name, advice FROM foreman.maintenance_advice WHERE job_name = 'purge_audit';
SELECT status, rows_affected, batches FROM foreman.wait_for_run('purge_audit', :'t2');
SELECT count(*) FILTER (WHERE at < now() - interval '7 days') AS old_left FROM audit_log;

-- A time budget: with max_runtime (else the job's timeout), a run starts
-- another batch only while it still fits; the pause comes between batches.
CALL reset_sessions();
SELECT now() AS t3 \gset
SELECT foreman.schedule_expiry('budgeted', 'sessions', '1 hour', schedule => '1 hour', batch_size => 1,
                               max_runtime => '1 second', batch_pause => '300 ms') > 0 AS scheduled;
SELECT status, rows_affected = batches AS one_row_a_batch, batches BETWEEN 1 AND 4 AS stopped_by_budget,
       duration < interval '1 second' AS within_budget
  FROM foreman.wait_for_run('budgeted', :'t3');
SELECT foreman.unschedule('budgeted');

-- Bad input to the scheduled forms: nothing is scheduled.
SELECT count(*) AS jobs_before FROM foreman.job WHERE job_id > 0;
\set VERBOSITY terse
SELECT foreman.schedule_expiry('bad', 'sessions', '1 hour', max_batches => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule_expiry('bad', 'sessions', '1 hour', max_runtime => '0');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule_expiry('bad', 'sessions', '1 hour', batch_pause => '-1 second');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule_expiry('bad', 'sessions', '1 hour', schedule => 'every tuesday');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule_expiry('bad', 'sessions', '1 hour', tier => 'no_such_tier');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule_expiry('bad', 'sessions', '1 hour', filter => 'no_such_column');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule_purge('bad', 'no_key', 'created_at', '1 hour');
\echo :LAST_ERROR_SQLSTATE
-- The filter is planned as the caller: a column the role may not read fails now.
REVOKE SELECT ON sessions FROM regress_maint_reader;
GRANT SELECT (id, status, created_at), UPDATE (status) ON sessions TO regress_maint_reader;
SET ROLE regress_maint_reader;
SELECT foreman.schedule_expiry('bad', 'sessions', '1 hour', filter => 'tenant = 1');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
\set VERBOSITY default
SELECT count(*) AS jobs_after FROM foreman.job WHERE job_id > 0;

-- A job runs as its owner and checks privileges at every run: take UPDATE
-- away after scheduling and the run fails, changing nothing.
CALL reset_sessions();
SET ROLE regress_maint_reader;
SELECT foreman.schedule_expiry('reader_expiry', 'sessions', '1 hour', schedule => '1 hour', enabled => false) > 0 AS scheduled;
RESET ROLE;
REVOKE UPDATE (status) ON sessions FROM regress_maint_reader;
SELECT foreman.alter_job('reader_expiry', enabled => true);
SELECT foreman.run_now('reader_expiry');
SELECT status, sqlstate, message FROM foreman.wait_for_run('reader_expiry', now() - interval '1 minute');
SELECT count(*) FILTER (WHERE status = 'active') AS still_active FROM sessions;

-- Unscheduling removes the job's maintenance row with it.
SELECT foreman.unschedule(job_name) FROM foreman.jobs
 WHERE job_name IN ('expire_sessions', 'purge_audit', 'reader_expiry') ORDER BY job_name;
SELECT count(*) AS maintenance_rows FROM foreman.maintenance;

-- Bounded run history: runs older than the retention, and runs beyond the
-- newest max_runs_per_job of each job, go in batches; 'running' rows stay.
-- The built-in job in tier slow does it every minute.
SELECT job_id, job_name, kind, tier, schedule, command, log_runs, enabled FROM foreman.jobs WHERE job_id < 0;
SHOW foreman.run_retention;
SHOW foreman.max_runs_per_job;
SELECT foreman.schedule('history_probe', '1 hour', 'SELECT 1', enabled => false) AS probe_id \gset
INSERT INTO foreman.job_run (job_id, job_name, owner, tier_id, status, started_at, finished_at)
SELECT :probe_id, 'history_probe', 10, 1, 'succeeded', now() - i * interval '1 hour', now() - i * interval '1 hour'
  FROM generate_series(30, 1, -1) i;
-- A run that is going (written as finished first: a row written by hand is
-- taken for a restored one, and a restored run cannot be going).
INSERT INTO foreman.job_run (job_id, job_name, owner, tier_id, status, started_at)
VALUES (:probe_id, 'history_probe', 10, 1, 'succeeded', now() - interval '30 days');
UPDATE foreman.job_run SET status = 'running' WHERE job_id = :probe_id AND finished_at IS NULL;
CALL foreman.trim_run_history(retention => '20 hours', batch_size => 4);
SELECT count(*) AS runs, count(*) FILTER (WHERE status = 'running') AS running FROM foreman.job_run WHERE job_id = :probe_id;
CALL foreman.trim_run_history(retention => '0', max_runs_per_job => 5, batch_size => 4);
SELECT count(*) AS runs, count(*) FILTER (WHERE status = 'running') AS running,
       max(started_at) > now() - interval '2 hours' AS newest_kept
  FROM foreman.job_run WHERE job_id = :probe_id;
-- Only superusers (the built-in job's owner) may trim.
SET ROLE regress_maint_reader;
CALL foreman.trim_run_history();
RESET ROLE;
SELECT foreman.unschedule('history_probe');

-- A maintenance job's command is pg_foreman's: alter_job refuses to change
-- it, and schedule() over it makes a plain SQL job of it again.
SELECT foreman.schedule_purge('purge_again', 'audit_log', 'at', '30 days') > 0 AS scheduled;
SELECT foreman.alter_job('purge_again', command => 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('purge_again', '1 hour', 'SELECT 1') > 0 AS replaced;
SELECT kind, command FROM foreman.jobs WHERE job_name = 'purge_again';
SELECT count(*) AS maintenance_rows FROM foreman.maintenance m JOIN foreman.job j USING (job_id)
 WHERE j.job_name = 'purge_again';
SELECT foreman.unschedule('purge_again');

DROP OWNED BY regress_maint_reader;
DROP ROLE regress_maint_reader;
