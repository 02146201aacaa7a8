# Worker life: crash, immediate shutdown, restart with and without
# shared_preload_libraries, pause/resume, SIGTERM, out of worker slots, and
# the role the worker runs as.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ZddCheck;

my $rows = 20000;

# A table of $rows rows and a throttled backfill on it; returns its id.
sub start_backfill
{
	my ($node, $table, %opt) = @_;
	# the test cluster's superuser is the OS user running the test
	my $user = $opt{user} // scalar(getpwuid($<));
	$node->safe_psql('postgres', qq{
		CREATE TABLE $table (id int PRIMARY KEY, lastname text NOT NULL);
		INSERT INTO $table SELECT g, 'n' || g FROM generate_series(1, $rows) g;
		ALTER TABLE $table OWNER TO $user;
	});
	return $node->safe_psql('postgres',
		"SELECT zdd.begin_rename('$table', 'lastname', 'surname', batch_size => 200, pause_ms => 20)",
		extra_params => [ '-U', $user ]);
}

sub status
{
	my ($node, $id, $col) = @_;
	return $node->safe_psql('postgres', "SELECT $col FROM zdd.status WHERE id = $id");
}

# Waits until the backfill has done some batches but not all.
sub wait_mid_backfill
{
	my ($node, $id) = @_;
	$node->poll_query_until('postgres',
		"SELECT rows_done > 1000 FROM zdd.transition WHERE id = $id")
	  or die "backfill $id never started";
}

sub worker_pid
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'zdd backfill'");
}

sub wait_backfilled
{
	my ($node, $id) = @_;
	return $node->poll_query_until('postgres',
		"SELECT phase = 'backfilled' FROM zdd.transition WHERE id = $id", 't');
}

# Every row in step, every row written exactly once by committed batches
# (a batch in flight at a crash rolled back, its rows were written again by
# the batch that repeated it), and the walk resumed from the cursor: a walk
# restarted from scratch would have counted more rows than the table has.
sub check_done
{
	my ($node, $id, $table, $what) = @_;
	ok(wait_backfilled($node, $id), "$what: backfill finished");
	is($node->safe_psql('postgres',
		"SELECT count(*) FROM $table WHERE surname IS DISTINCT FROM lastname"),
		'0', "$what: every row in step");
	is($node->safe_psql('postgres',
		"SELECT rows_done || '/' || rows_written FROM zdd.transition WHERE id = $id"),
		"$rows/$rows", "$what: resumed from the cursor, each row written once");
}

# ---- with shared_preload_libraries: the launcher resumes by itself ----
my $node = PostgreSQL::Test::Cluster->new('preload');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'zdd'
max_worker_processes = 16
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION zdd');
ok($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'zdd launcher'") eq '1',
	'launcher runs under shared_preload_libraries');

# kill -9 of the worker mid-backfill: crash restart, the launcher resumes
my $id = start_backfill($node, 'crash');
wait_mid_backfill($node, $id);
my $pid = worker_pid($node);
ok($pid =~ /^\d+$/, 'worker is visible in pg_stat_activity');
like($node->safe_psql('postgres',
	"SELECT query FROM pg_stat_activity WHERE backend_type = 'zdd backfill'"),
	qr/zdd backfill: public\.crash/, 'worker activity names the table');
kill 'KILL', $pid;
$node->poll_query_until('postgres', 'SELECT 1', '1');
check_done($node, $id, 'crash', 'kill -9');

# immediate shutdown and restart: resumes without any call
$id = start_backfill($node, 'immediate');
wait_mid_backfill($node, $id);
$node->stop('immediate');
$node->start;
check_done($node, $id, 'immediate', 'immediate shutdown');

# pause stops the writes within one batch, resume restarts them
$id = start_backfill($node, 'paused');
wait_mid_backfill($node, $id);
$node->safe_psql('postgres', "SELECT zdd.pause($id)");
my $done = status($node, $id, 'rows_done');
sleep 1;
is(status($node, $id, 'rows_done'), $done, 'pause: no batch after pause');
is(status($node, $id, 'backfill'), 'paused', 'pause: status shows paused');
$node->safe_psql('postgres', "SELECT zdd.resume($id)");
check_done($node, $id, 'paused', 'pause/resume');

# the worker runs as the role that started the transition
$node->safe_psql('postgres', 'CREATE ROLE alice LOGIN');
$id = start_backfill($node, 'owned', user => 'alice');
wait_mid_backfill($node, $id);
is($node->safe_psql('postgres',
	"SELECT usename FROM pg_stat_activity WHERE backend_type = 'zdd backfill'"),
	'alice', 'worker connected as the role that started the transition');
check_done($node, $id, 'owned', 'owned by alice');
$node->stop;

# ---- without preload: restart leaves it stalled until zdd.resume ----
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->append_conf('postgresql.conf', "max_worker_processes = 16\n");
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION zdd');
$id = start_backfill($plain, 'restart');
wait_mid_backfill($plain, $id);
$plain->restart;
is(status($plain, $id, 'backfill'), 'stalled', 'restart without preload: stalled');
$plain->safe_psql('postgres', "SELECT zdd.resume($id)");
check_done($plain, $id, 'restart', 'restart + resume');

# SIGTERM ends the worker cleanly: no half batch, resume finishes
$id = start_backfill($plain, 'term');
wait_mid_backfill($plain, $id);
$pid = worker_pid($plain);
$plain->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
$plain->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'zdd backfill'");
is(status($plain, $id, 'backfill'), 'stalled', 'SIGTERM: stalled');
my ($rc, $out, $err) = $plain->psql('postgres', "CALL zdd.wait($id, '20 s')");
like($err, qr/stalled/, 'zdd.wait reports a stalled backfill instead of hanging');
$plain->safe_psql('postgres', "SELECT zdd.resume($id)");
check_done($plain, $id, 'term', 'SIGTERM + resume');

# two roles' backfills in one database: one worker at a time, each as its
# role, handing over to the other role's worker when its own work is done
$plain->safe_psql('postgres', 'CREATE ROLE ann LOGIN; CREATE ROLE bob LOGIN');
my $ann = start_backfill($plain, 'ann_t', user => 'ann');
my $bob = start_backfill($plain, 'bob_t', user => 'bob');
check_done($plain, $ann, 'ann_t', "ann's backfill");
check_done($plain, $bob, 'bob_t', "bob's backfill (handed over)");
is($plain->safe_psql('postgres',
	"SELECT count(DISTINCT by_role) FROM zdd.history WHERE transition_id IN ($ann, $bob) AND to_state = 'backfilled'"),
	'2', 'each backfill finished by its own role');

# abort while the worker builds the twins: CREATE INDEX CONCURRENTLY waits
# for an old snapshot that a reporting session holds; abort cancels the
# build instead of giving up on the lock, and leaves the table as it was
$plain->safe_psql('postgres', q{
	CREATE TABLE twinned (id int PRIMARY KEY, lastname text NOT NULL);
	INSERT INTO twinned SELECT g, 'n' || g FROM generate_series(1, 1000) g;
	CREATE INDEX twinned_lastname ON twinned (lastname);
});
my $report = $plain->background_psql('postgres');
$report->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$report->query_safe('SELECT 1');
$id = $plain->safe_psql('postgres',
	"SELECT zdd.begin_rename('twinned', 'lastname', 'surname', pause_ms => 0)");
$plain->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE query = 'zdd backfill: building twins of transition $id'")
  or die 'twins build never started';
$plain->safe_psql('postgres', "SELECT zdd.abort($id)");
is($plain->safe_psql('postgres', "SELECT phase FROM zdd.transition WHERE id = $id"),
	'aborted', 'abort during a twin index build succeeds');
is($plain->safe_psql('postgres',
	"SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'twinned'::regclass"),
	'twinned_lastname,twinned_pkey', 'abort during a twin build: only the original indexes remain');
$report->quit;
$plain->stop;

# ---- out of worker slots: a clear error, nothing changed ----
my $tiny = PostgreSQL::Test::Cluster->new('tiny');
$tiny->init;
# the logical replication launcher takes the only slot
$tiny->append_conf('postgresql.conf', "max_worker_processes = 1\n");
$tiny->start;
$tiny->safe_psql('postgres', q{
	CREATE EXTENSION zdd;
	CREATE TABLE slots (id int PRIMARY KEY, lastname text);
	INSERT INTO slots VALUES (1, 'a');
});
($rc, $out, $err) = $tiny->psql('postgres',
	"\\set VERBOSITY verbose\nSELECT zdd.begin_rename('slots', 'lastname', 'surname')");
like($err, qr/53400/, 'out of slots: SQLSTATE 53400');
like($err, qr/max_worker_processes/, 'out of slots: hint names max_worker_processes');
is($tiny->safe_psql('postgres',
	"SELECT (SELECT count(*) FROM zdd.transition) || '/' || (SELECT count(*) FROM pg_attribute WHERE attrelid = 'slots'::regclass AND attname = 'surname')"),
	'0/0', 'out of slots: nothing changed');
my $sid = $tiny->safe_psql('postgres',
	"SELECT zdd.begin_rename('slots', 'lastname', 'surname', start_backfill => false)");
($rc, $out, $err) = $tiny->psql('postgres', "\\set VERBOSITY verbose\nSELECT zdd.resume($sid)");
like($err, qr/53400/, 'out of slots: resume fails with 53400');
is($tiny->safe_psql('postgres', "SELECT phase FROM zdd.transition WHERE id = $sid"),
	'expanded', 'out of slots: resume changed nothing');
$tiny->stop;

server_logs_clean($node, $plain, $tiny);

done_testing();
