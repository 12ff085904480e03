-- Tiers: 'fast' and 'slow' exist after CREATE EXTENSION; each enabled tier
-- gets a coordinator.
SELECT tier_id, name, tick, concurrency, enabled FROM foreman.tier ORDER BY tier_id;

-- Create a tier; the launcher starts its coordinator within a second.
SELECT foreman.create_tier('reports', '30 seconds') AS tier_id;
SELECT name, tick, concurrency, enabled FROM foreman.tier WHERE name = 'reports';
-- A job in it runs: the coordinator is there.
SELECT foreman.schedule('report_probe', '1 hour', 'SELECT 1', tier => 'reports');
SELECT status, tier_id = (SELECT tier_id FROM foreman.tier WHERE name = 'reports') AS in_reports
  FROM foreman.wait_for_run('report_probe', now() - interval '1 minute');
SELECT tier, leader, state IN ('idle', 'running', 'bookkeeping') AS alive, lock_classid, lock_objid = (SELECT tier_id FROM foreman.tier WHERE name = 'reports') AS lock_is_tier
  FROM foreman.tier_status WHERE tier = 'reports';

-- Change it.
SELECT foreman.alter_tier('reports', tick => '5 seconds');
SELECT name, tick FROM foreman.tier WHERE name = 'reports';

-- Bad input: each a clear error with a SQLSTATE, and nothing written.
SELECT foreman.create_tier('reports', '1 minute');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.create_tier('Bad Name', '1 minute');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.create_tier('tiny', '10 milliseconds');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.create_tier('negative', '-1 second');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.create_tier('monthly', '1 month');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.create_tier('wide', '10 seconds', concurrency => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.create_tier('wider', '10 seconds', concurrency => 5000);
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.create_tier(NULL, '10 seconds');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.alter_tier('no_such_tier', tick => '1 minute');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.drop_tier('no_such_tier');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.drop_tier('fast');
\echo :LAST_ERROR_SQLSTATE
-- A tier with jobs cannot be dropped ...
SELECT foreman.drop_tier('reports');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS tiers FROM foreman.tier;

-- ... until its jobs are gone.
SELECT foreman.unschedule('report_probe');
SELECT foreman.drop_tier('reports');
SELECT name FROM foreman.tier ORDER BY tier_id;

-- A parallel tier runs its jobs in executor workers, several at once.
SELECT foreman.create_tier('parallel', '10 seconds', concurrency => 3) > 0 AS created;
SELECT foreman.schedule('in_parallel', '1 hour', 'SELECT pg_backend_pid()', tier => 'parallel', overlap => 'allow', max_instances => 2) IS NOT NULL AS scheduled;
SELECT status, pid IS NOT NULL AS recorded_pid FROM foreman.wait_for_run('in_parallel', now() - interval '1 minute');
SELECT tier, concurrency, executors >= 0 AS has_executor_count FROM foreman.tier_status WHERE tier = 'parallel';
SELECT foreman.unschedule('in_parallel');
SELECT foreman.drop_tier('parallel');

-- Only superusers change tiers.
CREATE ROLE regress_tier_user;
SET ROLE regress_tier_user;
SELECT foreman.create_tier('mine', '1 minute');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE regress_tier_user;
