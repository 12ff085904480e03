-- How commands run: as top-level statements, as their owner, one failure
-- never stopping the next job, and nothing left behind for the next job.
CREATE TABLE events (id bigserial PRIMARY KEY, job text, who text, at timestamptz DEFAULT clock_timestamp());
CREATE PROCEDURE add_in_batches() LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (job, who) VALUES ('batch 1', current_user);
    COMMIT;
    INSERT INTO events (job, who) VALUES ('batch 2', current_user);
    COMMIT;
END $$;

-- Statements that refuse to run inside a function or transaction block.
SELECT foreman.schedule('vacuum_events', '1 hour', 'VACUUM (ANALYZE) events') IS NOT NULL AS scheduled;
SELECT status, command_tag FROM foreman.wait_for_run('vacuum_events', now() - interval '1 minute');
-- (CREATE INDEX CONCURRENTLY is proven by the TAP suite: it waits for every
-- older snapshot, including that of a session waiting in wait_for_run.)

-- A procedure that commits between batches.
SELECT foreman.schedule('batches', '1 hour', 'CALL add_in_batches()') IS NOT NULL AS scheduled;
SELECT status, command_tag FROM foreman.wait_for_run('batches', now() - interval '1 minute');
SELECT job FROM events WHERE job LIKE 'batch%' ORDER BY id;

-- Several statements run in one implicit transaction, as psql -c runs them:
-- an error in the second undoes the first.
SELECT foreman.schedule('half_done', '1 hour',
    $$INSERT INTO events (job) VALUES ('half'); SELECT 1/0$$) IS NOT NULL AS scheduled;
SELECT status, sqlstate, message FROM foreman.wait_for_run('half_done', now() - interval '1 minute');
SELECT count(*) AS half_rows FROM events WHERE job = 'half';
-- ... and a statement that refuses transaction blocks refuses them there too.
SELECT foreman.schedule('vacuum_in_block', '1 hour', 'SELECT 1; VACUUM events') IS NOT NULL AS scheduled;
SELECT status, sqlstate, message FROM foreman.wait_for_run('vacuum_in_block', now() - interval '1 minute');
-- BEGIN without COMMIT is rolled back, as when a psql -c session ends.
SELECT foreman.schedule('open_block', '1 hour', $$BEGIN; INSERT INTO events (job) VALUES ('open')$$) IS NOT NULL AS scheduled;
SELECT status, sqlstate, message FROM foreman.wait_for_run('open_block', now() - interval '1 minute');
SELECT count(*) AS open_rows FROM events WHERE job = 'open';

-- Per-job error isolation: the failing job is recorded, the next job runs.
SELECT clock_timestamp() AS t0 \gset
SELECT foreman.schedule('fails', '1 hour', 'SELECT * FROM no_such_table') IS NOT NULL AS scheduled;
SELECT foreman.schedule('after_failure', '1 hour', $$INSERT INTO events (job) VALUES ('after failure')$$) IS NOT NULL AS scheduled;
SELECT status, sqlstate, message FROM foreman.wait_for_run('fails', :'t0');
SELECT status FROM foreman.wait_for_run('after_failure', :'t0');
SELECT last_status, consecutive_failures FROM foreman.jobs WHERE job_name = 'fails';

-- Jobs run as their owner, never as the superuser the worker connected as.
CREATE ROLE regress_owner LOGIN IN ROLE foreman_user;
GRANT INSERT ON events TO regress_owner;
GRANT USAGE ON SEQUENCE events_id_seq TO regress_owner;
SET ROLE regress_owner;
SELECT foreman.schedule('as_owner', '1 hour',
    $$INSERT INTO events (job, who) VALUES ('as owner', current_user || '/' || session_user)$$) IS NOT NULL AS scheduled;
-- The owner cannot climb back to the superuser from inside a job ...
SELECT foreman.schedule('climb', '1 hour', 'SET ROLE postgres') IS NOT NULL AS scheduled;
SELECT foreman.schedule('climb_session', '1 hour', 'SET SESSION AUTHORIZATION DEFAULT') IS NOT NULL AS scheduled;
-- ... nor change settings only superusers may, nor read what it may not.
SELECT foreman.schedule('superuser_setting', '1 hour', 'SET log_statement = ''all''') IS NOT NULL AS scheduled;
SELECT foreman.schedule('read_other', '1 hour', 'SELECT * FROM foreman.tier_status, pg_authid') IS NOT NULL AS scheduled;
RESET ROLE;
SELECT status, owner::regrole FROM foreman.wait_for_run('as_owner', now() - interval '1 minute');
SELECT who FROM events WHERE job = 'as owner';
SELECT status, sqlstate, message FROM foreman.wait_for_run('climb', now() - interval '1 minute');
SELECT status, sqlstate, message FROM foreman.wait_for_run('climb_session', now() - interval '1 minute');
SELECT status, sqlstate, message FROM foreman.wait_for_run('superuser_setting', now() - interval '1 minute');
SELECT status, sqlstate, message FROM foreman.wait_for_run('read_other', now() - interval '1 minute');

-- Session state does not leak into the next job the same process runs.
SELECT clock_timestamp() AS t1 \gset
SELECT foreman.schedule('leaves_state', '1 hour', $$
    SET search_path = nowhere;
    SET work_mem = '64kB';
    CREATE TEMP TABLE scratch (a int);
    PREPARE leftover AS SELECT 1;
    SELECT pg_advisory_lock(4242)$$) IS NOT NULL AS scheduled;
SELECT status, message FROM foreman.wait_for_run('leaves_state', :'t1');
SELECT foreman.schedule('finds_none', '1 hour', $$
    INSERT INTO events (job, who) VALUES ('state check',
        concat_ws(',', current_setting('search_path'), current_setting('work_mem'),
                  coalesce(to_regclass('pg_temp.scratch')::text, 'no temp table'),
                  (SELECT count(*) FROM pg_prepared_statements) || ' prepared',
                  (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND pid = pg_backend_pid()) || ' locks'))$$) IS NOT NULL AS scheduled;
SELECT status FROM foreman.wait_for_run('finds_none', :'t1');
SELECT who AS state_seen_by_next_job FROM events WHERE job = 'state check';
-- Both ran in the same coordinator process.
SELECT count(DISTINCT pid) AS processes FROM foreman.runs WHERE job_name IN ('leaves_state', 'finds_none');

SELECT foreman.unschedule(job_name) FROM foreman.jobs WHERE job_name NOT LIKE 'foreman.%' ORDER BY job_name;
DROP OWNED BY regress_owner;
DROP ROLE regress_owner;
