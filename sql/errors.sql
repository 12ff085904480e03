-- Bad input: a clear error with a SQLSTATE, and nothing half-written.
SELECT count(*) AS jobs_before FROM foreman.job WHERE job_name NOT LIKE 'foreman.%';

-- unknown tier
SELECT foreman.schedule('e1', '10 seconds', 'SELECT 1', tier => 'no_such_tier');
\echo :LAST_ERROR_SQLSTATE
-- negative, zero and too short intervals
SELECT foreman.schedule('e2', '-5 seconds', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('e3', '0 seconds', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('e4', '10 milliseconds', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
-- months vary in length
SELECT foreman.schedule('e5', '1 month', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
-- not a schedule at all
SELECT foreman.schedule('e6', 'every now and then', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('e7', '', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
-- empty commands, and commands that do not parse
SELECT foreman.schedule('e8', '10 seconds', '');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('e9', '10 seconds', '  ;  ');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('e10', '10 seconds', 'SELEKT 1');
\echo :LAST_ERROR_SQLSTATE
-- NULLs where a value is needed
SELECT foreman.schedule(NULL, '10 seconds', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('e11', NULL, 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('e12', '10 seconds', NULL);
\echo :LAST_ERROR_SQLSTATE
-- a name too long, settings out of range
SELECT foreman.schedule(repeat('x', 64), '10 seconds', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('e13', '10 seconds', 'SELECT 1', timeout => '-1 second');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('e14', '10 seconds', 'SELECT 1', overlap => 'sometimes');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('e15', '10 seconds', 'SELECT 1', overlap => 'allow');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('e16', '10 seconds', 'SELECT 1', retries => -1);
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('e17', '10 seconds', 'SELECT 1', jitter => '-1 second');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('e18', '10 seconds', 'SELECT 1', time_zone => 'Mars/Olympus_Mons');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('e19', '10 seconds', 'SELECT 1', start_at => '2030-01-02', end_at => '2030-01-01');
\echo :LAST_ERROR_SQLSTATE
-- an oversized command
SELECT foreman.schedule('e20', '10 seconds', 'SELECT ''' || repeat('x', 1100000) || '''');
\echo :LAST_ERROR_SQLSTATE

-- jobs that do not exist
SELECT foreman.unschedule('no_such_job');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.alter_job('no_such_job', schedule => '1 minute');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.run_now('no_such_job');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM foreman.wait_for_run('no_such_job');
\echo :LAST_ERROR_SQLSTATE

-- alter_job validates like schedule and changes nothing on error
SELECT foreman.schedule('valid', '1 hour', 'SELECT 1') IS NOT NULL AS scheduled;
SELECT foreman.alter_job('valid', schedule => '-1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.alter_job('valid', command => '');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.alter_job('valid', tier => 'no_such_tier');
\echo :LAST_ERROR_SQLSTATE
SELECT schedule, command, tier FROM foreman.jobs WHERE job_name = 'valid';
SELECT foreman.alter_job('valid', enabled => false);
-- wait_for_run gives up after its timeout, with a clear error
SELECT * FROM foreman.wait_for_run('valid', now(), timeout => '200 milliseconds');
\echo :LAST_ERROR_SQLSTATE
-- and refuses to wait where it could never see the run
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM foreman.wait_for_run('valid');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT foreman.unschedule('valid');

-- The tables are written only through the API.
CREATE ROLE regress_intruder;
SET ROLE regress_intruder;
INSERT INTO foreman.job (job_name, owner, tier_id, command, schedule, schedule_kind, anchor_at)
VALUES ('sneaky', 10, 1, 'SELECT 1', '1 second', 'interval', now());
\echo :LAST_ERROR_SQLSTATE
UPDATE foreman.tier SET tick = '1 second';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE regress_intruder;

SELECT count(*) AS jobs_after FROM foreman.job WHERE job_name NOT LIKE 'foreman.%';
