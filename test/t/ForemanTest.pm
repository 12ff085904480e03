# ForemanTest.pm: helpers shared by the pg_foreman TAP tests.
#
#   new_node($name, %opts)             a started PostgreSQL::Test::Cluster node with the
#                                      settings of test/regression.conf and the extension
#                                      created in database postgres (preload => 0: neither)
#   wait_until($node, $sql, $timeout, db => 'postgres', expected => 't')
#                                      poll $sql every 0.1 s until it prints $expected or
#                                      $timeout seconds have passed; true on success, and
#                                      ($ok, $elapsed_seconds) in list context
#   wait_for_leaders($node, $db, $n, $timeout)
#                                      until foreman.tier_status of $db shows $n leaders
#   leader_pid($node, $tier, $db)      pid of the tier's leading coordinator, or ''
#   coordinator_count($node, $db)      pg_foreman coordinators of $db in pg_stat_activity
#   query($node, $sql, $db)            safe_psql shorthand
#   wait_for_log_line($node, $offset, $regex, $timeout)
#                                      poll the server log from byte $offset every 0.1 s
#                                      until a line matches $regex (true) or $timeout
#                                      seconds have passed (false)
#   session($node, db => ..., user => ...)
#                                      a psql session in the background (ForemanTest::Session):
#                                      ->send($sql) sends without waiting, ->result($timeout)
#                                      waits (bounded) for what the statements sent so far
#                                      printed, ->query($sql, $timeout) both, ->busy, ->close
#
# Every wait is bounded: a test never sleeps and hopes.
package ForemanTest;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

our @EXPORT = qw(new_node wait_until wait_for_leaders leader_pid coordinator_count query session wait_for_log_line);

# The same settings as test/regression.conf (the TAP staging directory does not
# carry that file, so they are repeated here).
our $SETTINGS = <<'EOC';
shared_preload_libraries = 'pg_foreman'
max_worker_processes = 32
foreman.log_runs = 'all'
log_min_messages = info
EOC

sub new_node
{
	my ($name, %opts) = @_;
	my $preload = exists $opts{preload} ? $opts{preload} : 1;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', $preload ? $SETTINGS : "max_worker_processes = 32\n");
	$node->append_conf('postgresql.conf', $opts{extra_conf}) if $opts{extra_conf};
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION pg_foreman') if $preload;
	return $node;
}

sub query
{
	my ($node, $sql, $db) = @_;
	return $node->safe_psql($db // 'postgres', $sql);
}

sub wait_until
{
	my ($node, $sql, $timeout, %opts) = @_;
	my $db       = $opts{db}       // 'postgres';
	my $expected = $opts{expected} // 't';
	$timeout //= 10;

	my $start    = time();
	my $deadline = $start + $timeout;
	my ($out, $err) = ('', '');
	while (1)
	{
		# psql, not safe_psql: an error (e.g. a relation that is not there yet)
		# is one more failed attempt, not the end of the test. So is a psql
		# that exits before it reads its input (a server in crash-restart
		# refuses the connection): IPC::Run's write of the statement then
		# dies with "ack Broken pipe", which Cluster::psql passes on.
		my $ret;
		eval { ($ret, $out, $err) = $node->psql($db, $sql); 1 }
		  or ($ret, $out, $err) = (undef, '', "psql did not run: $@");
		if (defined $ret && $ret == 0 && $out eq $expected)
		{
			my $elapsed = time() - $start;
			return wantarray ? (1, $elapsed) : 1;
		}
		last if time() >= $deadline;
		usleep(100_000);
	}
	diag("wait_until: no '$expected' after ${timeout}s from:\n$sql\n"
		  . "last output: '$out'\nlast stderr: '$err'");
	return wantarray ? (0, time() - $start) : 0;
}

sub wait_for_log_line
{
	my ($node, $offset, $regex, $timeout) = @_;
	my $deadline = time() + ($timeout // 10);
	while (1)
	{
		return 1 if grep { /$regex/ } split /^/, slurp_file($node->logfile, $offset);
		last if time() >= $deadline;
		usleep(100_000);
	}
	diag("wait_for_log_line: no line matching $regex after ${timeout}s");
	return 0;
}

sub wait_for_leaders
{
	my ($node, $db, $n, $timeout) = @_;
	return wait_until(
		$node,
		"SELECT count(*) FILTER (WHERE leader) = $n FROM foreman.tier_status",
		$timeout // 10,
		db => $db);
}

sub leader_pid
{
	my ($node, $tier, $db) = @_;
	return query($node,
		"SELECT pid FROM foreman.tier_status WHERE tier = '$tier' AND leader",
		$db);
}

sub coordinator_count
{
	my ($node, $db) = @_;
	my $filter = defined $db ? " AND datname = '$db'" : '';
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_foreman coordinator'$filter");
}

sub session
{
	my ($node, %opts) = @_;
	return ForemanTest::Session->new($node, %opts);
}

# A psql session kept open in the background: an open transaction, a lock
# held while other things happen, statements that wait on each other.
package ForemanTest::Session;

use strict;
use warnings;
use IPC::Run;

my $marker_seq = 0;

sub new
{
	my ($class, $node, %opts) = @_;
	my $self = bless { in => '', out => '', err => '', pending => [] }, $class;
	my @cmd = (
		$node->installed_command('psql'), '-XAtq', '-v', 'ON_ERROR_STOP=0',
		'-h', $node->host, '-p', $node->port, '-d', $opts{db} // 'postgres',
		($opts{user} ? ('-U', $opts{user}) : ()));
	$self->{timer} = IPC::Run::timer(300);
	$self->{handle} =
	  IPC::Run::start(\@cmd, '<', \$self->{in}, '>', \$self->{out}, '2>', \$self->{err}, $self->{timer});
	return $self;
}

# Sends statements; their output is collected until the next result().
sub send
{
	my ($self, $sql) = @_;
	my $marker = '__foreman_done_' . ++$marker_seq . '__';
	push @{ $self->{pending} }, $marker;
	$self->{in} .= "$sql\n\\echo $marker\n";
	$self->{handle}->pump_nb;
	return;
}

# Waits (at most $timeout seconds) until everything sent so far has run;
# returns (stdout, stderr) of it. Dies when the time is up.
sub result
{
	my ($self, $timeout) = @_;
	$timeout //= 60;
	my $marker = $self->{pending}[-1] // return ('', '');
	$self->{timer}->start($timeout);
	$self->{handle}->pump while $self->{out} !~ /\Q$marker\E/ && !$self->{timer}->is_expired;
	die "session: no result within ${timeout}s; stderr so far: $self->{err}"
	  if $self->{out} !~ /\Q$marker\E/;
	my ($out, $err) = ($self->{out}, $self->{err});
	$out =~ s/__foreman_done_\d+__\n?//g;
	chomp $out;
	($self->{out}, $self->{err}, $self->{pending}) = ('', '', []);
	return ($out, $err);
}

# True while what was sent has not finished (it waits for a lock, say).
sub busy
{
	my ($self) = @_;
	my $marker = $self->{pending}[-1] // return 0;
	$self->{handle}->pump_nb;
	return $self->{out} !~ /\Q$marker\E/;
}

sub query
{
	my ($self, $sql, $timeout) = @_;
	$self->send($sql);
	my ($out, $err) = $self->result($timeout);
	return wantarray ? ($out, $err) : $out;
}

sub close
{
	my ($self) = @_;
	$self->{in} .= "\\q\n";
	$self->{timer}->start(30);
	eval { $self->{handle}->finish; };
	$self->{handle}->kill_kill if $@;
	return;
}

1;
