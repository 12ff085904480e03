-- Security: who may do what, what each role sees, and no way up.
-- An admin, two users, and a role that was never granted anything.
CREATE ROLE regress_admin LOGIN IN ROLE foreman_admin;
CREATE ROLE regress_u1 LOGIN IN ROLE foreman_user;
CREATE ROLE regress_u2 LOGIN IN ROLE foreman_user;
CREATE ROLE regress_nobody LOGIN;
CREATE TABLE ledger (who text, note text, at timestamptz DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON ledger TO regress_u1, regress_u2;

-- An ordinary role can schedule nothing until granted foreman_user.
SET ROLE regress_nobody;
SELECT foreman.schedule('nope', '1 hour', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS jobs_nobody_sees FROM foreman.jobs;
RESET ROLE;

-- Users schedule their own jobs.
SET ROLE regress_u1;
SELECT foreman.schedule('u1_job', '1 hour', $$INSERT INTO ledger (who) VALUES (current_user)$$) IS NOT NULL AS scheduled;
SET ROLE regress_u2;
SELECT foreman.schedule('u2_job', '1 hour', $$INSERT INTO ledger (who) VALUES (current_user)$$) IS NOT NULL AS scheduled;

-- Each sees only its own jobs and runs.
SET ROLE regress_u1;
SELECT job_name, owner FROM foreman.jobs ORDER BY job_name;
SELECT status FROM foreman.wait_for_run('u1_job', now() - interval '1 minute');
SELECT DISTINCT job_name, owner FROM foreman.runs ORDER BY job_name;
SET ROLE regress_u2;
SELECT job_name, owner FROM foreman.jobs ORDER BY job_name;

-- Forbidden: every action on another role's job (which answers like a job
-- that does not exist, 42704: no existence oracle), scheduling as another
-- role, and tiers (42501), each with a clear message.
SELECT foreman.alter_job('u1_job', schedule => '1 minute');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.unschedule('u1_job');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.run_now('u1_job');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM foreman.wait_for_run('u1_job', timeout => '0');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM foreman.next_runs('u1_job');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('as_u1', '1 hour', 'SELECT 1', owner => 'regress_u1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.create_tier('u2_tier', '1 minute');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.alter_tier('fast', tick => '1 second');
\echo :LAST_ERROR_SQLSTATE
-- Writing the tables directly is not possible either.
UPDATE foreman.job SET command = 'SELECT 1';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM foreman.job_run;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- An admin sees and manages every job, and manages tiers.
SET ROLE regress_admin;
SELECT job_name, owner FROM foreman.jobs WHERE job_name LIKE 'u%' ORDER BY job_name;
SELECT foreman.alter_job('u1_job', schedule => '2 hours');
SELECT foreman.create_tier('reports', '30 seconds') > 0 AS tier_created;
SELECT foreman.drop_tier('reports');
-- It schedules as another role only if it is a member of that role.
SELECT foreman.schedule('for_u1', '1 hour', 'SELECT 1', owner => 'regress_u1');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
GRANT regress_u1 TO regress_admin;
SET ROLE regress_admin;
SELECT foreman.schedule('for_u1', '1 hour', 'SELECT 1', owner => 'regress_u1') IS NOT NULL AS scheduled;
SELECT job_name, owner FROM foreman.jobs WHERE job_name = 'for_u1';
-- ... and not as a role that cannot run jobs.
RESET ROLE;
GRANT regress_nobody TO regress_admin;
SET ROLE regress_admin;
SELECT foreman.schedule('for_nobody', '1 hour', 'SELECT 1', owner => 'regress_nobody');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- Limits for roles that are not admins: a shortest period and a job count.
SET foreman.max_jobs_per_role = 2;
SET ROLE regress_u1;
SELECT foreman.schedule('too_often', '500 milliseconds', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET foreman.min_user_interval = '5s';
SET ROLE regress_u1;
SELECT foreman.schedule('too_often', '*/2 * * * * *', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
RESET foreman.min_user_interval;
SET ROLE regress_u1;
SELECT foreman.schedule('third_job', '1 hour', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
RESET foreman.max_jobs_per_role;
SET ROLE regress_admin;
SELECT foreman.schedule('admin_fast', '500 milliseconds', 'SELECT 1') IS NOT NULL AS admins_may;
SELECT foreman.unschedule('admin_fast');
RESET ROLE;

-- A user's function in public, named like a pg_catalog function the
-- extension uses, changes nothing: the extension pins search_path and its
-- views were bound when they were created.
GRANT CREATE ON SCHEMA public TO regress_u1;
SET ROLE regress_u1;
CREATE FUNCTION public.pg_has_role(oid, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION public.pg_has_role(name, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
SET search_path = public, pg_catalog;
SELECT string_agg(job_name, ', ' ORDER BY job_name) AS jobs_u1_sees FROM foreman.jobs;
SELECT foreman.unschedule('u2_job');
\echo :LAST_ERROR_SQLSTATE
RESET search_path;
DROP FUNCTION public.pg_has_role(oid, text), public.pg_has_role(name, text);
RESET ROLE;
REVOKE CREATE ON SCHEMA public FROM regress_u1;

-- A job that changes search_path for the session leaves nothing for the next
-- owner's job in the same process.
SELECT clock_timestamp() AS t0 \gset
SET ROLE regress_u1;
SELECT foreman.schedule('sets_path', '1 hour', $$SELECT set_config('search_path', 'pg_temp, regress_elsewhere', false)$$, tier => 'slow') IS NOT NULL AS scheduled;
SET ROLE regress_u2;
SELECT foreman.schedule('reads_path', '1 hour', $$INSERT INTO ledger (who, note) VALUES (current_user, current_setting('search_path'))$$, tier => 'slow') IS NOT NULL AS scheduled;
RESET ROLE;
SELECT status FROM foreman.wait_for_run('sets_path', :'t0');
SELECT status FROM foreman.wait_for_run('reads_path', :'t0');
SELECT who, note AS search_path_seen FROM ledger WHERE note IS NOT NULL;

-- Owners are checked at every run: a role that lost LOGIN, or foreman_user,
-- or was dropped, has its job fail with the reason, and the job is disabled.
ALTER ROLE regress_u2 NOLOGIN;
SELECT clock_timestamp() AS t1 \gset
SELECT foreman.run_now('u2_job');
SELECT status, sqlstate, message FROM foreman.wait_for_run('u2_job', :'t1');
SELECT enabled, disabled_reason FROM foreman.jobs WHERE job_name = 'u2_job';
ALTER ROLE regress_u2 LOGIN;
REVOKE foreman_user FROM regress_u1;
SELECT clock_timestamp() AS t2 \gset
SELECT foreman.run_now('u1_job');
SELECT status, sqlstate, message FROM foreman.wait_for_run('u1_job', :'t2');
SELECT enabled, disabled_reason FROM foreman.jobs WHERE job_name = 'u1_job';
GRANT foreman_user TO regress_u1;
CREATE ROLE regress_gone LOGIN IN ROLE foreman_user;
GRANT INSERT ON ledger TO regress_gone;
SET ROLE regress_gone;
SELECT foreman.schedule('orphan', '1 hour', 'SELECT 1', enabled => false) IS NOT NULL AS scheduled;
RESET ROLE;
REVOKE INSERT ON ledger FROM regress_gone;
DROP ROLE regress_gone;
SELECT foreman.alter_job('orphan', enabled => true);
SELECT clock_timestamp() AS t3 \gset
SELECT foreman.run_now('orphan');
SELECT status, sqlstate, message FROM foreman.wait_for_run('orphan', :'t3');
SELECT enabled, disabled_reason FROM foreman.jobs WHERE job_name = 'orphan';

-- Clean up.
SELECT foreman.unschedule(job_name) FROM foreman.jobs WHERE job_name NOT LIKE 'foreman.%' ORDER BY job_name;
DROP TABLE ledger;
DROP ROLE regress_admin, regress_u1, regress_u2, regress_nobody;
