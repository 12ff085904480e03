-- Multi-tenant safety: roles that share a server do not trust each other.
-- Another role's job is never named; every input is bounded; the internal
-- functions are nobody's; a shared tier bounds a user's run; a job's
-- session state and its statements reach neither the log nor the next job.
CREATE ROLE regress_mt_alice LOGIN IN ROLE foreman_user;
CREATE ROLE regress_mt_bob LOGIN IN ROLE foreman_user;
CREATE ROLE regress_mt_admin LOGIN IN ROLE foreman_admin;
CREATE ROLE regress_mt_mallory LOGIN;
CREATE SCHEMA mallory AUTHORIZATION regress_mt_mallory;
CREATE TABLE mt_ledger (who text, what text, at timestamptz DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON mt_ledger TO regress_mt_alice, regress_mt_bob, regress_mt_admin;
\set VERBOSITY terse

-- Another role's job answers exactly like a name that does not exist.
SET ROLE regress_mt_bob;
SELECT foreman.schedule('bobs', '1 hour', 'SELECT 1') > 0 AS scheduled;
SET ROLE regress_mt_alice;
SELECT foreman.run_now('bobs');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.run_now('nobody_has_this');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.alter_job('bobs', retries => 1);
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.unschedule('bobs');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.unschedule('bobs', if_exists => true);
SELECT * FROM foreman.next_runs('bobs');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM foreman.wait_for_run('bobs', timeout => '0');
\echo :LAST_ERROR_SQLSTATE

-- A job removed earlier in the same statement is gone for the calls after
-- it (this used to crash the backend).
SELECT foreman.schedule('x', '1 hour', 'SELECT 1') > 0 AS scheduled;
SELECT foreman.unschedule('x'), foreman.alter_job('x', retries => 1);
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.unschedule('x'), foreman.run_now('x');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.unschedule('x'), foreman.unschedule('x', if_exists => true);
SELECT count(*) AS x_jobs FROM foreman.jobs WHERE job_name = 'x';

-- Every input is bounded, and out-of-range times are refused.
SELECT foreman.schedule(repeat('j', 64), '1 hour', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('long_schedule', repeat('* ', 600), 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('long_zone', '1 hour', 'SELECT 1', time_zone => repeat('x', 300));
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('long_tier', '1 hour', 'SELECT 1', tier => repeat('t', 300));
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('inf', '1 hour', 'SELECT 1', start_at => 'infinity');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('far', '1 hour', 'SELECT 1', end_at => '20000-01-01');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('huge', '40000 days', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('huge', '1 hour', 'SELECT 1', timeout => '99999 days');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.expire_stale('mt_ledger', '1 hour', status_column => 'what', timestamp_column => 'at',
       terminal_statuses => (SELECT array_agg(i::text) FROM generate_series(1, 300) i));
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.expire_stale('mt_ledger', '1 hour', status_column => 'what', timestamp_column => 'at',
       set_status => repeat('s', 300));
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.purge('mt_ledger', 'at', '1 day', filter => repeat('x', 70000));
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.purge('mt_ledger', 'at', '1 day', batch_size => 2000000);
\echo :LAST_ERROR_SQLSTATE

-- foreman.min_user_interval bounds the shortest gap between fire times, not
-- the typical one: this list fires twice a second apart every minute.
RESET ROLE;
SET foreman.min_user_interval = '30s';
SET ROLE regress_mt_alice;
SELECT foreman.schedule('twice', '0,1 * * * * *', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('twice', '0,30 * * * * *', 'SELECT 1') > 0 AS scheduled;
RESET ROLE;
RESET foreman.min_user_interval;

-- The internal functions are nobody's (tier_status is for foreman_user and
-- pg_monitor); the tier trigger's function can be no other table's trigger.
SET ROLE regress_mt_mallory;
SELECT * FROM foreman._coordinators();
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM foreman._executors();
\echo :LAST_ERROR_SQLSTATE
SELECT foreman._report_progress('forged');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman._report_run_totals(1, 1);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM foreman.tier_status;
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE mallory.t (x int);
CREATE TRIGGER scouts AFTER INSERT ON mallory.t FOR EACH STATEMENT EXECUTE FUNCTION foreman._tiers_changed();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
CREATE TABLE mt_other (x int);
CREATE TRIGGER scouts AFTER INSERT ON mt_other FOR EACH STATEMENT EXECUTE FUNCTION foreman._tiers_changed();
INSERT INTO mt_other VALUES (1);
\echo :LAST_ERROR_SQLSTATE
DROP TABLE mt_other;

-- A job has no client to COPY to, and may not LOAD a library that would
-- stay for every later job.
SET ROLE regress_mt_alice;
SELECT foreman.schedule('copy_out', '@once', 'COPY (SELECT 1) TO STDOUT', tier => 'fast') > 0 AS scheduled;
SELECT status, sqlstate, message FROM foreman.wait_for_run('copy_out', now() - interval '1 minute');
SELECT foreman.schedule('load_lib', '@once', $$LOAD 'plpgsql'$$, tier => 'fast') > 0 AS scheduled;
SELECT status, sqlstate, message FROM foreman.wait_for_run('load_lib', now() - interval '1 minute');

-- Session state dies with its job: a chosen random() seed and session
-- characteristics that would make the next job read-only, or wait for a
-- safe snapshot.
SELECT foreman.schedule('seeder', '@once', $$SELECT setseed(0.5);
    SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE$$,
    tier => 'fast') > 0 AS scheduled;
SELECT status FROM foreman.wait_for_run('seeder', now() - interval '1 minute');
SET ROLE regress_mt_bob;
SELECT foreman.schedule('dice', '@once', $$INSERT INTO mt_ledger (who, what) SELECT current_user, random()::text$$,
    tier => 'fast') > 0 AS scheduled;
SELECT status, sqlstate FROM foreman.wait_for_run('dice', now() - interval '1 minute', timeout => '20 seconds');
RESET ROLE;
SELECT setseed(0.5) IS NOT NULL AS seeded \gset
SELECT random()::text AS after_seed \gset
SELECT count(*) AS dice_rolls, bool_and(what <> :'after_seed') AS not_the_seeded_value
  FROM mt_ledger WHERE who = 'regress_mt_bob';

-- A shared tier bounds the run time of jobs of roles that are not
-- foreman_admin: one role's long job cannot hold the others'.
SELECT foreman.alter_tier('fast', max_user_runtime => '1 second');
SELECT max_user_runtime FROM foreman.tier_status WHERE tier = 'fast' LIMIT 1;
SET ROLE regress_mt_alice;
SELECT foreman.schedule('long', '@once', 'SELECT pg_sleep(30)', tier => 'fast') > 0 AS scheduled;
SELECT status, reason, sqlstate, message
  FROM foreman.wait_for_run('long', now() - interval '1 minute', timeout => '25 seconds');
SET ROLE regress_mt_admin;
SELECT foreman.schedule('admin_long', '@once', 'SELECT pg_sleep(1.5)', tier => 'fast') > 0 AS scheduled;
SELECT status, reason FROM foreman.wait_for_run('admin_long', now() - interval '1 minute', timeout => '25 seconds');
RESET ROLE;
SELECT foreman.alter_tier('fast', max_user_runtime => '0');
SELECT max_user_runtime IS NULL AS unbounded FROM foreman.tier_status WHERE tier = 'fast' LIMIT 1;
SELECT foreman.alter_tier('fast', max_user_runtime => '30 seconds');
SELECT foreman.alter_tier('fast', max_user_runtime => '-1 second');
\echo :LAST_ERROR_SQLSTATE

-- run_now of a job that just started comes no sooner than
-- foreman.min_user_interval after that start.
SET ROLE regress_mt_alice;
SELECT foreman.schedule('often', '1 hour', $$INSERT INTO mt_ledger (who, what) VALUES (current_user, 'often')$$,
    tier => 'fast') > 0 AS scheduled;
SELECT status FROM foreman.wait_for_run('often', now() - interval '1 minute');
SELECT foreman.run_now('often');
RESET ROLE;
SELECT run_requested_at >= last_started_at + current_setting('foreman.min_user_interval')::interval AS not_sooner
  FROM foreman.job WHERE job_name = 'often';

RESET ROLE;
SELECT foreman.unschedule(job_name) FROM foreman.job WHERE job_id > 0 ORDER BY job_id;
DROP TABLE mt_ledger;
DROP SCHEMA mallory CASCADE;
DROP ROLE regress_mt_alice, regress_mt_bob, regress_mt_admin, regress_mt_mallory;
