# 045_events.pl: LISTEN foreman_events, with a real listening session.
#
#  - A failed run raises an event with its job, run id, status, SQLSTATE
#    and message (foreman.event_payload = 'full'); a success does not, unless
#    the job says notify => 'all'; notify => 'none' silences even failures.
#  - A job disabled by max_failures raises a 'disabled' event.
#  - An event is sent at the commit of the record it describes: while that
#    record cannot commit (a superuser's lock on foreman.job_run), none
#    arrives; afterwards exactly one.
#  - A new leader raises a 'leadership' event.
#  - With the default payload ('ids') no job name or message travels: any
#    session of the database may listen.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ForemanTest;

my $node = new_node('events', extra_conf => "foreman.event_payload = 'full'\n");
ok(wait_for_leaders($node, 'postgres', 2), 'both built-in tiers have a leader');

my $listener = session($node);
$listener->query('LISTEN foreman_events;', 10);
my @received;

# Collects what the listener received; psql prints notifications after each
# command it runs.
sub poll_events
{
	my ($out) = $listener->query('SELECT 1;', 10);
	push @received, $1 while $out =~ /Asynchronous notification "foreman_events" with payload "(.*?)" received/g;
	return;
}

# Waits (bounded) for an event whose payload matches $re; returns it.
sub wait_event
{
	my ($re, $timeout) = @_;
	my $deadline = time() + ($timeout // 20);
	while (time() < $deadline)
	{
		poll_events();
		my ($hit) = grep { /$re/ } @received;
		return $hit if $hit;
		usleep(100_000);
	}
	return undef;
}

query($node, q{SELECT foreman.schedule('boom', '@once', 'SELECT 1/0', tier => 'fast')});
my $event = wait_event(qr/"job": "boom"/);
ok($event, 'a failed run raises an event');
like($event // '', qr/"event": "run"/, '... a run event');
like($event // '', qr/"status": "failed"/, '... with its status');
like($event // '', qr/"sqlstate": "22012"/, '... its SQLSTATE');
like($event // '', qr/"message": "division by zero"/, '... its message');
like($event // '', qr/"tier": "fast"/, '... its tier');
like($event // '', qr/"database": "postgres"/, '... and its database');
my $run_id = query($node, q{SELECT run_id FROM foreman.job_run WHERE job_name = 'boom'});
like($event // '', qr/"run_id": $run_id\b/, '... and its run id');

query($node, q{
	SELECT foreman.schedule('quiet_ok', '@once', 'SELECT 1', tier => 'fast');
	SELECT foreman.schedule('loud_ok', '@once', 'SELECT 1', tier => 'fast', notify => 'all');
	SELECT foreman.schedule('silent_fail', '@once', 'SELECT 1/0', tier => 'fast', notify => 'none');
});
ok(wait_event(qr/"job": "loud_ok".*"status": "succeeded"|"status": "succeeded".*"job": "loud_ok"/),
	'notify => all: a success raises an event too');
ok(wait_until($node, q{SELECT count(*) = 2 FROM foreman.job_run WHERE job_name IN ('quiet_ok', 'silent_fail')
	AND status <> 'running'}), 'the quiet jobs ran');
poll_events();
is(scalar(grep { /quiet_ok|silent_fail/ } @received), 0, 'a success (notify failures) and notify => none: no event');

query($node, q{SELECT foreman.schedule('fragile', '1 second', 'SELECT 1/0', tier => 'fast', max_failures => 2)});
my $disabled = wait_event(qr/"event": "disabled".*"job": "fragile"/);
ok($disabled, 'a job disabled by max_failures raises a disabled event');
like($disabled // '', qr/"reason": "disabled after 2 consecutive failures/, '... naming why');

# No event before the record commits.
my $locker = session($node);
$locker->query('BEGIN; LOCK TABLE foreman.job_run IN ACCESS EXCLUSIVE MODE;', 10);
query($node, q{SELECT foreman.schedule('late', '@once', 'SELECT 1/0', tier => 'slow')});
ok(wait_until($node, q{SELECT state = 'blocked' FROM foreman.tier_status WHERE tier = 'slow' AND leader}, 20),
	'the slow tier cannot record while foreman.job_run is locked');
poll_events();
is(scalar(grep { /"job": "late"/ } @received), 0, 'no event for a record that has not committed');
$locker->query('ROLLBACK;', 10);
$locker->close;
ok(wait_event(qr/"job": "late"/), 'once it commits, the event arrives');
# Events arrive in commit order: one that is sent after it marks the point
# by which a duplicate would have arrived.
query($node, q{SELECT foreman.schedule('marker', '@once', 'SELECT 1', tier => 'slow', notify => 'all')});
ok(wait_event(qr/"job": "marker"/), 'a later event arrives');
is(scalar(grep { /"job": "late"/ } @received), 1, 'and the late run raised exactly one');

# A new leader.
my $leader = leader_pid($node, 'fast');
query($node, "SELECT pg_terminate_backend($leader)");
my $lead = wait_event(qr/"event": "leadership".*"tier": "fast"/, 30);
ok($lead, 'a new leader of tier fast raises a leadership event');
like($lead // '', qr/"epoch": \d+/, '... with its epoch');

# The default payload carries no names or messages.
$node->append_conf('postgresql.conf', "foreman.event_payload = 'ids'\n");
$node->reload;
ok(wait_until($node, q{SELECT current_setting('foreman.event_payload') = 'ids'}), 'payload back to ids');
@received = ();
query($node, q{SELECT foreman.schedule('secret', '@once', 'SELECT 1/0', tier => 'fast')});
my $secret_run = undef;
ok(wait_until($node, q{SELECT count(*) = 1 FROM foreman.job_run WHERE job_name = 'secret' AND status = 'failed'}),
	'the secret job failed');
$secret_run = query($node, q{SELECT run_id FROM foreman.job_run WHERE job_name = 'secret'});
my $ids = wait_event(qr/"run_id": $secret_run\b/);
ok($ids, 'an ids event arrives for it');
unlike($ids // '', qr/secret|division/, 'without the job name or message');

$listener->close;
$node->stop;
done_testing();
