-- Checking a schedule before trusting it: foreman.preview(), which text is an
-- interval and which is cron, fire times decades apart, and schedules that
-- can never fire (doc/cron.md).
SET timezone = 'UTC';
CREATE FUNCTION pg_temp.preview(schedule text, n int DEFAULT 4, zone text DEFAULT NULL,
                                start_at timestamptz DEFAULT '2030-01-01 00:00:00+00')
RETURNS SETOF text LANGUAGE sql AS
$$ SELECT to_char(t AT TIME ZONE coalesce(zone, 'UTC'), 'Dy YYYY-MM-DD HH24:MI:SS')
     FROM foreman.preview(schedule, n, zone, start_at) t $$;

-- foreman.preview: the fire times a job with this schedule, anchored at
-- start_at, would have from start_at on. No job is needed.
SELECT * FROM pg_temp.preview('*/15 * * * *', start_at => '2030-01-01 00:07:30+00');
SELECT * FROM pg_temp.preview('0 9 * * mon-fri', 3, 'America/New_York', '2030-03-08 00:00:00+00');
SELECT * FROM pg_temp.preview('30 2 * * *', 3, 'Europe/Berlin', '2030-03-30 00:00:00+00');
SELECT * FROM pg_temp.preview('90 minutes', 3, start_at => '2030-01-01 12:00:00+00');
SELECT * FROM pg_temp.preview('@once', 3, start_at => '2030-06-01 12:00:00+00');
SELECT * FROM pg_temp.preview('@reboot');
SELECT count(*) AS none FROM foreman.preview('* * * * *', 0);
SELECT count(*) AS a_thousand FROM foreman.preview('* * * * * *', 1000);
-- start_at defaults to now(), time_zone to the session's.
SELECT bool_and(t > now() - interval '1 second' AND t <= now() + interval '1 hour') AS from_now
  FROM foreman.preview('*/10 * * * *') t;
-- It shows what foreman.next_runs() shows once a job has the schedule.
SELECT foreman.schedule('month_end_berlin', '0 0 L * *', 'SELECT 1', start_at => '2030-01-15 00:00:00+00',
                        time_zone => 'Europe/Berlin') IS NOT NULL AS scheduled;
SELECT array(SELECT foreman.next_runs('month_end_berlin', 6))
     = array(SELECT foreman.preview('0 0 L * *', 6, 'Europe/Berlin', '2030-01-15 00:00:00+00')) AS same_fire_times;
-- Bounded, checked arguments.
SELECT * FROM foreman.preview('* * * * *', 1001);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM foreman.preview('* * * * *', -1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM foreman.preview(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM foreman.preview('* * * * *', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM foreman.preview('* * * * *', 1, NULL, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM foreman.preview('* * * * *', 1, NULL, 'infinity');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM foreman.preview('* * * * *', 1, 'Atlantis/Capital');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM foreman.preview(repeat('1 hour ', 200));
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM foreman.preview('50 milliseconds');
\echo :LAST_ERROR_SQLSTATE
-- For foreman_user, like next_runs().
CREATE ROLE regress_cron_user LOGIN IN ROLE foreman_user;
CREATE ROLE regress_cron_nobody LOGIN;
SET ROLE regress_cron_user;
SELECT count(*) AS user_may FROM foreman.preview('@hourly', 3);
SET ROLE regress_cron_nobody;
SELECT count(*) FROM foreman.preview('@hourly', 3);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE regress_cron_user, regress_cron_nobody;

-- Interval or cron. Text is an interval only in interval form: numbers,
-- units, numbers with units, times, ISO 8601 durations, and no number right
-- after another.
SELECT * FROM pg_temp.preview('1 day 2 hours 3 minutes', 2);
SELECT * FROM pg_temp.preview('10 seconds', 2);
SELECT * FROM pg_temp.preview('00:00:10', 2);
SELECT * FROM pg_temp.preview('1 day 00:00:10', 2);
SELECT * FROM pg_temp.preview('PT1H30M', 2);
SELECT * FROM pg_temp.preview('1.5 hours', 2);
SELECT * FROM pg_temp.preview('10s', 2);
-- Anything else with five or six fields is cron: numbers alone are cron fields.
SELECT * FROM pg_temp.preview('1 2 3 4 5', 2);
SELECT * FROM foreman.preview('0 0 1 1 * 2000');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM pg_temp.preview('@hourly', 2);
-- Malformed cron is refused, naming the field; it never becomes an interval
-- (PostgreSQL's interval reader skips punctuation: '1% * * * *' was one second).
SELECT foreman.schedule('percent', '1% * * * *', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('hash', '0 0 * * 1#2', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('day_words', '1 day 2 3 4', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM foreman.preview('*/5 * * *');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM foreman.preview('10 secnds');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS nothing_written FROM foreman.job WHERE job_name IN ('percent', 'hash', 'day_words');

-- Fire times decades apart: 29 February on a Sunday (either day field
-- starting with '*' means both must match) comes back after 28 or 40 years.
-- The search covers the whole 400-year Gregorian cycle.
SELECT foreman.schedule('leap_sunday', '0 0 29 2 */7', 'SELECT 1', start_at => '2030-01-01 00:00:00+00',
                        time_zone => 'UTC') IS NOT NULL AS scheduled;
SELECT to_char(t, 'Dy YYYY-MM-DD HH24:MI') AS fire FROM foreman.next_runs('leap_sunday', 5) t;
SELECT * FROM pg_temp.preview('30 12 29 feb ?', 3, 'Europe/Berlin', '2096-03-01 00:00:00+00');
SELECT * FROM pg_temp.preview('0 0 29 2 */6', 4, 'America/New_York');

-- A schedule that can never fire is refused, with a hint.
SELECT foreman.schedule('never', '0 0 31 2 *', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('never', '0 0 30,31 feb ?', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM foreman.preview('0 0 31 4,6,9,11 *');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.alter_job('leap_sunday', schedule => '0 0 31 11 */7');
\echo :LAST_ERROR_SQLSTATE
SELECT schedule FROM foreman.jobs WHERE job_name = 'leap_sunday';
-- With both day fields restricted either may match: Mondays in February fire.
SELECT * FROM pg_temp.preview('0 0 31 2 mon', 2);

SELECT foreman.unschedule(job_name) FROM foreman.jobs WHERE job_name IN ('month_end_berlin', 'leap_sunday') ORDER BY job_name;
