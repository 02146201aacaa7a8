# The worker under attack (issue 8): CALL zdd.wait across worker crashes,
# a table that grows at its end faster than the walk, cancels between
# batches, a worker ended by SIGTERM (the launcher picks the work up
# again), and a role whose settings would make every batch fail under
# write load.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ZddCheck;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('hostile');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'zdd'
max_worker_processes = 16
restart_after_crash = on
zdd.launcher_naptime = 2
log_statement = none
});
$node->start;
my $me = scalar(getpwuid($<));
$node->safe_psql('postgres', q{
	CREATE EXTENSION zdd;
	CREATE ROLE app LOGIN;
	GRANT CREATE ON SCHEMA public TO app;
});

sub sql { my ($text) = @_; return $node->safe_psql('postgres', $text); }

# Waits until the server accepts queries again (after a crash restart a
# client may find it gone mid-query: retried).
sub wait_server_up
{
	for (1 .. 600)
	{
		my $ok = eval {
			local $SIG{PIPE} = 'IGNORE';
			$node->safe_psql('postgres', 'SELECT 1') eq '1';
		};
		return if $ok;
		select(undef, undef, undef, 0.1);
	}
	die 'the server did not come back';
}

sub worker_pid
{
	return sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'zdd backfill' LIMIT 1");
}

# ---- 1. CALL zdd.wait across pause, resume, kill -9 and restart ----
# The result row must survive SPI_finish, and polling must not grow the
# backend (SPI tuple tables freed); repeated to catch the dangling pointer.
sql(q{CREATE TABLE waits (id int PRIMARY KEY, lastname text) ;
    INSERT INTO waits SELECT g, 'n' || g FROM generate_series(1, 40000) g;
    ALTER TABLE waits OWNER TO app});
my $ok = 0;
my $rounds = 20;
for my $round (1 .. $rounds)
{
	my $id = $node->safe_psql('postgres',
		"SELECT zdd.begin_rename('waits', 'lastname', 'surname', batch_size => 2000, pause_ms => 20)",
		extra_params => [ '-U', 'app' ]);
	sql("SELECT zdd.pause($id)");
	sql("SELECT zdd.resume($id)");
	$node->poll_query_until('postgres',
		"SELECT rows_done > 0 FROM zdd.transition WHERE id = $id") or die;
	my $pid = worker_pid();
	my $offset = -s $node->logfile;
	kill 'KILL', $pid if $pid;
	# crash restart: every backend is gone; wait for it, then for the server
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset) if $pid;
	wait_server_up();
	my ($rc, $out, $err) = $node->psql('postgres', "CALL zdd.wait($id, '120 s')",
		extra_params => [ '-U', 'app' ]);
	$ok++ if $rc == 0 && $out eq 'backfilled';
	diag("round $round: rc $rc out '$out' err '$err'") unless $rc == 0 && $out eq 'backfilled';
	is(sql("SELECT count(*) FROM waits WHERE surname IS DISTINCT FROM lastname"), '0',
		"wait round $round: every row in step");
	sql("SELECT zdd.abort($id)");
}
is($ok, $rounds, "CALL zdd.wait returned the phase after a worker crash, $rounds rounds in a row");

# A long wait polls hundreds of times: the waiting backend must not grow.
sql(q{CREATE TABLE slow (id int PRIMARY KEY, lastname text);
    INSERT INTO slow SELECT g, 'n' || g FROM generate_series(1, 600) g});
my $sid = sql("SELECT zdd.begin_rename('slow', 'lastname', 'surname', batch_size => 10, pause_ms => 100)");
my $done = sql("SELECT min(id) FROM zdd.transition WHERE phase = 'aborted'");
my ($rc, $out, $err) = $node->psql('postgres', qq{
	SELECT zdd.resume($done) WHERE false;
	SELECT sum(used_bytes) FROM pg_backend_memory_contexts;
	CALL zdd.wait($sid, '120 s');
	SELECT sum(used_bytes) FROM pg_backend_memory_contexts;
});
like($out, qr/^(\d+)\nbackfilled\n(\d+)$/, 'long wait returned the phase');
my ($before, $after) = $out =~ /^(\d+)\nbackfilled\n(\d+)$/;
cmp_ok(($after // 1e12) - ($before // 0), '<', 1024 * 1024,
	'waiting backend did not grow over ~150 polls');

# ---- 7. a table growing at its end: each pass ends at its start's last key ----
sql(q{CREATE TABLE grows (id bigserial PRIMARY KEY, lastname text);
    INSERT INTO grows (lastname) SELECT 'n' || g FROM generate_series(1, 5000) g});
# 200 single-row inserts a second at rising keys: a walk that ends only on
# an empty batch would always find the newest rows and never end while
# they go on (30 s here; pgbench is stopped once the wait returns).
my $script = $node->basedir . '/grow.sql';
open(my $fh, '>', $script) or die;
print $fh "INSERT INTO grows (lastname) VALUES ('g');\n";
close $fh;
my $bench = IPC::Run::start(
	[ 'pgbench', '-n', '-T', '30', '-R', '200', '-c', '1', '-f', $script, '-h', $node->host, '-p', $node->port, 'postgres' ],
	'>', \my $bout, '2>', \my $berr);
sleep 1;
my $gid = sql("SELECT zdd.begin_rename('grows', 'lastname', 'surname')");
my $t0 = time();
($rc, $out, $err) = $node->psql('postgres', "CALL zdd.wait($gid, '60 s')");
my $took = time() - $t0;
my $still = $bench->pumpable;
$bench->kill_kill;
is($out, 'backfilled', 'growing table: the backfill finished while inserts went on');
ok($still, sprintf('growing table: finished while the inserts still ran (%.1f s)', $took));
is(sql("SELECT count(*) FROM grows WHERE surname IS DISTINCT FROM lastname"), '0',
	'growing table: every row in step, old and new');
cmp_ok(sql("SELECT count(*) FROM grows"), '>', 5100, 'growing table: inserts ran before and during the walk');

# ---- 8. cancels between batches, SIGTERM, and the launcher's rescan ----
sql(q{CREATE TABLE steady (id int PRIMARY KEY, lastname text);
    INSERT INTO steady SELECT g, 'n' || g FROM generate_series(1, 3000) g});
my $tid = sql("SELECT zdd.begin_rename('steady', 'lastname', 'surname', batch_size => 20, pause_ms => 100)");
$node->poll_query_until('postgres', "SELECT rows_done > 0 FROM zdd.transition WHERE id = $tid") or die;
my $wpid = worker_pid();
for (1 .. 5)
{
	sql("SELECT pg_cancel_backend($wpid)");
	select(undef, undef, undef, 0.15);
}
is(worker_pid(), $wpid, 'cancels: the same worker still runs');
is(sql("SELECT backfill FROM zdd.status WHERE id = $tid"), 'running', 'cancels: the backfill still runs');
kill 'TERM', $wpid;
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'zdd backfill' AND pid <> $wpid")
  or die 'the launcher did not pick the backfill up again';
pass('SIGTERM: the launcher started a new worker by itself');
($rc, $out) = $node->psql('postgres', "CALL zdd.wait($tid, '120 s')");
is($out, 'backfilled', 'cancels and SIGTERM: the backfill finished');
is(sql("SELECT count(*) FROM steady WHERE surname IS DISTINCT FROM lastname"), '0',
	'cancels and SIGTERM: every row in step');

# ---- 10. a role's settings under write load ----
sql(q{CREATE ROLE rr LOGIN;
    ALTER ROLE rr SET default_transaction_isolation = 'repeatable read';
    CREATE TABLE hot (id int PRIMARY KEY, lastname text, n int DEFAULT 0);
    INSERT INTO hot SELECT g, 'n' || g FROM generate_series(1, 20000) g;
    ALTER TABLE hot OWNER TO rr});
$script = $node->basedir . '/hot.sql';
open($fh, '>', $script) or die;
print $fh "\\set k random(1, 20000)\nUPDATE hot SET n = n + 1 WHERE id = :k;\n";
close $fh;
$bench = IPC::Run::start(
	[ 'pgbench', '-n', '-T', '15', '-c', '4', '-f', $script, '-h', $node->host, '-p', $node->port, 'postgres' ],
	'>', \$bout, '2>', \$berr);
my $hid = $node->safe_psql('postgres',
	"SELECT zdd.begin_rename('hot', 'lastname', 'surname', batch_size => 500, pause_ms => 0)",
	extra_params => [ '-U', 'rr' ]);
($rc, $out) = $node->psql('postgres', "CALL zdd.wait($hid, '120 s')");
$bench->finish;
is($out, 'backfilled', 'repeatable-read role under write load: backfilled');
is(sql("SELECT failures || '/' || COALESCE(last_error, '') FROM zdd.transition WHERE id = $hid"), '0/',
	'repeatable-read role: no failed batch');
is(sql("SELECT count(*) FROM hot WHERE surname IS DISTINCT FROM lastname"), '0',
	'repeatable-read role: every row in step');

$node->stop;
server_logs_clean($node);
done_testing();
