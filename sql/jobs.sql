-- Jobs: schedule, replace, alter, run_now, unschedule, and what
-- foreman.jobs shows.
CREATE TABLE heartbeat (job text, at timestamptz DEFAULT clock_timestamp());

-- An interval schedule; the tier defaults by period: up to 60 s is 'fast'.
SELECT foreman.schedule('refresh_config', '10 seconds',
                        $$INSERT INTO heartbeat (job) VALUES ('refresh_config')$$) AS job_id \gset
SELECT job_name, owner = current_user::regrole AS mine, tier, schedule, schedule_kind, enabled, next_run_at IS NOT NULL AS has_next_run
  FROM foreman.jobs WHERE job_name = 'refresh_config';

-- Longer periods land in 'slow'; an explicit tier wins.
SELECT foreman.schedule('rollup', '5 minutes', $$INSERT INTO heartbeat (job) VALUES ('rollup')$$) IS NOT NULL AS scheduled;
SELECT foreman.schedule('pinned', '5 minutes', 'SELECT 1', tier => 'fast') IS NOT NULL AS scheduled;
SELECT job_name, tier FROM foreman.jobs WHERE job_name IN ('rollup', 'pinned') ORDER BY job_name;

-- The first run of an interval job comes right after scheduling.
SELECT status, command_tag, rows_affected FROM foreman.wait_for_run('refresh_config', now() - interval '1 minute');

-- Scheduling the same name again replaces the job: same job_id, one row.
SELECT foreman.schedule('refresh_config', '20 seconds',
                        $$INSERT INTO heartbeat (job) VALUES ('refresh_config')$$) = :job_id AS same_job;
SELECT count(*) AS jobs_named_refresh_config, min(schedule) AS schedule
  FROM foreman.jobs WHERE job_name = 'refresh_config';

-- alter_job changes what it is given and leaves the rest.
SELECT foreman.alter_job('refresh_config', schedule => '30 seconds', timeout => '5 seconds');
SELECT schedule, timeout, command FROM foreman.jobs WHERE job_name = 'refresh_config';
SELECT foreman.alter_job('refresh_config', enabled => false);
SELECT enabled, next_run_at IS NULL AS no_next_run FROM foreman.jobs WHERE job_name = 'refresh_config';
SELECT foreman.alter_job('refresh_config', enabled => true);
SELECT enabled, next_run_at IS NOT NULL AS has_next_run FROM foreman.jobs WHERE job_name = 'refresh_config';

-- run_now is asynchronous: it returns at once and the run follows its commit.
-- (First its scheduled run ends: a run_now asked while it runs would be skipped, overlap => 'skip'.)
SELECT status AS first_run FROM foreman.wait_for_run('rollup', now() - interval '1 minute');
SELECT clock_timestamp() AS before_run_now \gset
SELECT foreman.run_now('rollup');
SELECT status, job_name FROM foreman.wait_for_run('rollup', :'before_run_now');
SELECT count(*) > 0 AS rollup_ran FROM heartbeat WHERE job = 'rollup' AND at >= :'before_run_now';

-- A paused job runs once by hand, and stays paused; next_runs shows the
-- fire times it would have if it were enabled now.
SELECT foreman.schedule('paused', '1 hour', $$INSERT INTO heartbeat (job) VALUES ('paused')$$,
                        enabled => false) IS NOT NULL AS scheduled;
SELECT count(*) AS fire_times_if_enabled FROM foreman.next_runs('paused', 3);
SELECT clock_timestamp() AS before_paused_run \gset
SELECT foreman.run_now('paused');
SELECT status FROM foreman.wait_for_run('paused', :'before_paused_run');
SELECT enabled, next_run_at IS NULL AS no_next_run FROM foreman.jobs WHERE job_name = 'paused';
SELECT foreman.unschedule('paused');

-- Several statements, as in psql -c.
SELECT foreman.schedule('two_statements', '1 hour',
    $$INSERT INTO heartbeat (job) VALUES ('two'); INSERT INTO heartbeat (job) VALUES ('two')$$) IS NOT NULL AS scheduled;
SELECT status, rows_affected FROM foreman.wait_for_run('two_statements', now() - interval '1 minute');

-- Counts in foreman.jobs.
SELECT job_name, runs >= 1 AS has_runs, failures FROM foreman.jobs WHERE job_name = 'two_statements';

-- Unschedule; its history stays in foreman.runs.
SELECT foreman.unschedule('two_statements');
SELECT count(*) AS jobs FROM foreman.jobs WHERE job_name = 'two_statements';
SELECT count(*) > 0 AS history_kept FROM foreman.runs WHERE job_name = 'two_statements';
SELECT foreman.unschedule('two_statements', if_exists => true);

-- Another role's jobs: not visible, and not to be touched.
CREATE ROLE regress_alice LOGIN IN ROLE foreman_user;
CREATE ROLE regress_bob LOGIN IN ROLE foreman_user;
GRANT INSERT ON heartbeat TO regress_alice;
SET ROLE regress_alice;
SELECT foreman.schedule('alice_job', '1 hour', $$INSERT INTO heartbeat (job) VALUES ('alice')$$) IS NOT NULL AS scheduled;
SELECT job_name, owner FROM foreman.jobs ORDER BY job_name;
SET ROLE regress_bob;
SELECT count(*) AS jobs_bob_sees FROM foreman.jobs;
SELECT foreman.alter_job('alice_job', schedule => '1 minute');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.unschedule('alice_job');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.run_now('alice_job');
\echo :LAST_ERROR_SQLSTATE
-- Bob may use the same name for a job of his own.
SELECT foreman.schedule('alice_job', '1 hour', 'SELECT 1') IS NOT NULL AS scheduled;
SELECT job_name, owner FROM foreman.jobs;
SELECT foreman.unschedule('alice_job');
RESET ROLE;
-- A superuser sees and manages every job.
SELECT job_name, owner, schedule FROM foreman.jobs WHERE job_name = 'alice_job';
SELECT foreman.alter_job('alice_job', schedule => '2 hours');
SELECT owner, schedule FROM foreman.jobs WHERE job_name = 'alice_job';
SELECT foreman.unschedule('alice_job');

SELECT foreman.unschedule(job_name) FROM foreman.jobs WHERE job_name NOT LIKE 'foreman.%' ORDER BY job_name;
