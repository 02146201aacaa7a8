# Health: a backfill waits (state 'waiting', the reason in zdd.status, a
# LOG line) while a real streaming standby's replay is paused, while
# autovacuum runs on its table, and while WAL segments wait to be
# archived; it writes nothing meanwhile, resumes by itself when the
# signal clears and finishes with every row in step, on the standby too.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ZddCheck;

my $arrow = qr/(?:\xe2\x86\x92|->)/;    # the LOG lines' arrow, UTF-8 or not
my $archive = PostgreSQL::Test::Utils::tempdir();
my $flag = "$archive/archiving_works";
open(my $fh, '>', $flag) or die;
close($fh);

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
max_worker_processes = 16
autovacuum_naptime = 1
zdd.health_recheck = 200
# the dead tuples signal is tested in pg_regress (zdd_health.sql)
zdd.max_dead_tuples = 0
archive_mode = on
archive_command = 'test -f "$flag" && cp "%p" "$archive/%f"'
});
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION zdd');

# A table of n rows with autovacuum off and a transition on it, its
# backfill not started yet; returns the transition's id.
sub table_with_transition
{
	my ($table, $n) = @_;
	$primary->safe_psql('postgres', qq{
		CREATE TABLE $table (id int PRIMARY KEY, lastname text NOT NULL)
		  WITH (autovacuum_enabled = false);
		INSERT INTO $table SELECT g, 'n' || g FROM generate_series(1, $n) g;
	});
	return $primary->safe_psql('postgres',
		"SELECT zdd.begin_rename('$table', 'lastname', 'surname', batch_size => 500, "
		  . "pause_ms => 10, start_backfill => false)");
}

sub status
{
	my ($id, $cols) = @_;
	return $primary->safe_psql('postgres', "SELECT $cols FROM zdd.status WHERE id = $id");
}

sub rows_written
{
	my ($table) = @_;
	return $primary->safe_psql('postgres', "SELECT count(*) FROM $table WHERE surname IS NOT NULL");
}

# Waits for state 'waiting'; then checks that nothing is written for 2 s.
sub waits_and_writes_nothing
{
	my ($id, $table, $what) = @_;
	ok($primary->poll_query_until('postgres',
		"SELECT backfill = 'waiting' FROM zdd.status WHERE id = $id"), "$what: backfill waits");
	my $before = rows_written($table) . ' ' . status($id, 'rows_done');
	sleep 2;
	is(rows_written($table) . ' ' . status($id, 'rows_done'), $before,
		"$what: nothing written while waiting");
	is(status($id, 'backfill'), 'waiting', "$what: still waiting while the signal holds");
}

sub finishes_in_step
{
	my ($id, $table, $n, $what) = @_;
	ok($primary->poll_query_until('postgres',
		"SELECT phase = 'backfilled' FROM zdd.status WHERE id = $id"), "$what: resumes by itself and finishes");
	is($primary->safe_psql('postgres',
		"SELECT count(*) || ' ' || count(*) FILTER (WHERE surname IS DISTINCT FROM lastname) FROM $table"),
		"$n 0", "$what: every row in step");
	is($primary->safe_psql('postgres',
		"SELECT string_agg(s, ' ' ORDER BY id) FROM (SELECT id, from_state || '>' || to_state AS s "
		  . "FROM zdd.history WHERE transition_id = $id AND event = 'backfill' "
		  . "AND to_state IN ('waiting', 'running') AND from_state IS DISTINCT FROM to_state "
		  . "ORDER BY id LIMIT 3) h"),
		'pending>running running>waiting waiting>running',
		"$what: history shows the wait and its end");
	ok(status($id, "waited > interval '1 s'") eq 't', "$what: the time waited is counted");
}

# ---- 1. a streaming standby whose replay is paused ----
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

my $n = 100000;
my $id = table_with_transition('r', $n);
$primary->safe_psql('postgres', "SELECT zdd.throttle($id, max_replica_lag => '2MB')");
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
$standby->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
my $log_at = -s $primary->logfile;
# an app listening for zdd's notifications, in its own session
my $listener = $primary->background_psql('postgres');
$listener->query_safe('LISTEN zdd');
$primary->safe_psql('postgres', "SELECT zdd.resume($id)");
waits_and_writes_nothing($id, 'r', 'replica');
like(status($id, 'wait_reason'), qr/^replica lag \d+ [kMG]B > 2048 kB on standby$/,
	'replica: the reason names the lag, the limit and the standby');
cmp_ok(status($id, 'rows_done'), '<', $n, 'replica: the wait came mid-backfill');
is($primary->safe_psql('postgres',
	"SELECT value = 1 FROM zdd.metrics WHERE id = $id AND metric = 'waiting'"), 't',
	'replica: zdd.metrics shows the wait');
is($primary->safe_psql('postgres',
	"SELECT value > 2 * 1024 * 1024 FROM zdd.metrics WHERE id = $id AND metric = 'lag_bytes'"), 't',
	'replica: zdd.metrics shows the lag');
ok($primary->wait_for_log(
	qr/zdd: transition $id public\.r lastname${arrow}surname: backfill running $arrow waiting \(replica lag /,
	$log_at), 'replica: a LOG line says why the backfill waits');
$standby->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
finishes_in_step($id, 'r', $n, 'replica');
# psql prints the notifications that arrived meanwhile after its next query
my $heard = $listener->query_safe('SELECT 1');
$listener->quit;
like($heard, qr/"id" : $id, .*"event" : "backfill", "from" : "running", "to" : "waiting", "reason" : "replica lag /,
	'replica: NOTIFY zdd from the worker says the backfill waits, and why');
like($heard, qr/"id" : $id, .*"event" : "backfill", "from" : "waiting", "to" : "running"/,
	'replica: NOTIFY zdd says it runs again');
like($heard, qr/"id" : $id, .*"phase" : "backfilled", .*"event" : "phase", "from" : "backfilling", "to" : "backfilled"/,
	'replica: NOTIFY zdd says the column is backfilled');
ok($primary->wait_for_log(
	qr/zdd: transition $id public\.r lastname${arrow}surname: backfilling $arrow backfilled \(rows $n, /,
	$log_at), 'replica: a LOG line says the backfill is done');
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
is($standby->safe_psql('postgres',
	"SELECT count(*) || ' ' || count(*) FILTER (WHERE surname IS DISTINCT FROM lastname) FROM r"),
	"$n 0", 'replica: every row in step on the standby');

# ---- 1b. a standby whose replay stands still: the delay signal ----
# (replay_lag keeps its last value while replay is paused; zdd also
# counts how long the replay position has not moved)
$n = 50000;
$id = table_with_transition('rd', $n);
$primary->safe_psql('postgres',
	"SELECT zdd.throttle($id, max_replica_lag => '0', max_replica_delay => '1 s')");
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
$standby->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
$primary->safe_psql('postgres', "SELECT zdd.resume($id)");
waits_and_writes_nothing($id, 'rd', 'replay delay');
like(status($id, 'wait_reason'), qr/^replica delay \d+ ms > 1000 ms on standby$/,
	'replay delay: the reason names the delay, the limit and the standby');
$standby->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
finishes_in_step($id, 'rd', $n, 'replay delay');

# ---- 2. autovacuum running on the table ----
$n = 200000;
$id = table_with_transition('av', $n);
# a crawling autovacuum (cost limit 1, 100 ms per page): it runs for minutes
$primary->safe_psql('postgres', q{
	UPDATE av SET lastname = lastname WHERE id % 10 = 0;
	ALTER TABLE av SET (autovacuum_enabled = true, autovacuum_vacuum_cost_delay = 100,
	  autovacuum_vacuum_cost_limit = 1, autovacuum_vacuum_threshold = 0,
	  autovacuum_vacuum_scale_factor = 0);
});
ok($primary->poll_query_until('postgres',
	"SELECT EXISTS (SELECT 1 FROM pg_stat_progress_vacuum WHERE relid = 'av'::regclass)"),
	'autovacuum: autovacuum runs on the table');
$primary->safe_psql('postgres', "SELECT zdd.resume($id)");
waits_and_writes_nothing($id, 'av', 'autovacuum');
like(status($id, 'wait_reason'), qr/^autovacuum running on the table \(pid \d+\)$/,
	'autovacuum: the reason names autovacuum');
# Turning autovacuum off for the table waits for autovacuum's lock, so
# PostgreSQL cancels the autovacuum after deadlock_timeout.
$primary->safe_psql('postgres', 'ALTER TABLE av SET (autovacuum_enabled = false)');
finishes_in_step($id, 'av', $n, 'autovacuum');

# ---- 3. WAL waiting to be archived ----
$n = 20000;
$id = table_with_transition('ar', $n);
$primary->safe_psql('postgres', "SELECT zdd.throttle($id, max_archive_backlog => 2)");
unlink $flag or die;
for my $i (1 .. 4)
{
	$primary->safe_psql('postgres', "CREATE TABLE ar_$i (i int); SELECT pg_switch_wal()");
}
$primary->safe_psql('postgres', "SELECT zdd.resume($id)");
waits_and_writes_nothing($id, 'ar', 'archive');
like(status($id, 'wait_reason'), qr/^archive backlog \d+ WAL segments > 2$/,
	'archive: the reason names the backlog');
open($fh, '>', $flag) or die;
close($fh);
$primary->safe_psql('postgres', 'CREATE TABLE ar_wake (i int); SELECT pg_switch_wal()');
finishes_in_step($id, 'ar', $n, 'archive');

server_logs_clean($primary, $standby);
done_testing();
