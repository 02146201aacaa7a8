# A partitioned table's backfill survives kill -9 of its worker: every leaf
# resumes from its own cursor (keyset on the leaf's key, ctid for a leaf
# without one), no row is written twice, and the verify pass and twins
# complete on every leaf.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ZddCheck;

my $node = PostgreSQL::Test::Cluster->new('parted');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'zdd'
max_worker_processes = 16
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION zdd;
	CREATE TABLE events (id int NOT NULL, day int NOT NULL, kind text) PARTITION BY RANGE (day);
	CREATE TABLE events_1 PARTITION OF events FOR VALUES FROM (0) TO (10);
	CREATE TABLE events_2 PARTITION OF events FOR VALUES FROM (10) TO (20);
	CREATE TABLE events_3 PARTITION OF events FOR VALUES FROM (20) TO (30);
	CREATE TABLE events_rest PARTITION OF events DEFAULT;
	ALTER TABLE events_1 ADD PRIMARY KEY (id);
	ALTER TABLE events_3 ADD PRIMARY KEY (id, day);
	CREATE INDEX events_kind ON events (kind);
	INSERT INTO events SELECT g, g % 40, 'k' || g FROM generate_series(1, 24000) g;
});
my %leaf_rows = map { $_ => $node->safe_psql('postgres', "SELECT count(*) FROM $_") }
  qw(events_1 events_2 events_3 events_rest);
my $id = $node->safe_psql('postgres',
	"SELECT zdd.begin_rename('events', 'kind', 'category', batch_size => 300, pause_ms => 60)");

# kill -9 while the second leaf (ctid walk) is half done, then again while
# the third (keyset on (id, day)) is
for my $leaf (qw(events_2 events_3))
{
	$node->poll_query_until('postgres', qq{
		SELECT rows_done > 900 AND pass = 'backfill' FROM zdd.status_partitions
		WHERE id = $id AND partition = '$leaf'::regclass})
	  or die "$leaf never reached mid-walk";
	my $pid = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'zdd backfill'");
	like($node->safe_psql('postgres', "SELECT query FROM pg_stat_activity WHERE pid = $pid"),
		qr/public\.$leaf backfill pass/, "the worker names the leaf it walks ($leaf)");
	kill 'KILL', $pid;
	$node->poll_query_until('postgres', 'SELECT 1', '1');
}
ok($node->poll_query_until('postgres',
	"SELECT phase = 'backfilled' FROM zdd.transition WHERE id = $id", 't'),
	'backfill finished after two crashes');
is($node->safe_psql('postgres', 'SELECT count(*) FROM events WHERE category IS DISTINCT FROM kind'),
	'0', 'every row in step');
# A keyset walk visits each row once; a ctid walk (events_2, events_rest)
# may visit again a version the walk itself moved to a later page (in
# step: not written again), so its visits are at least the rows.
for my $leaf (sort keys %leaf_rows)
{
	my $n = $leaf_rows{$leaf};
	my $keyset = ($leaf eq 'events_1' || $leaf eq 'events_3') ? 'true' : 'false';
	is($node->safe_psql('postgres', qq{
		SELECT pass || ' ' || (CASE WHEN $keyset THEN rows_done = $n ELSE rows_done >= $n END)
		  || ' ' || rows_written || '/' || rows_verified
		FROM zdd.status_partitions WHERE id = $id AND partition = '$leaf'::regclass}),
		"done true $n/$n",
		"$leaf: resumed from its cursor, each row written once and verified");
}
is($node->safe_psql('postgres', "SELECT rows_written FROM zdd.transition WHERE id = $id"),
	'24000', 'the transition counts every leaf\'s writes once');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid
	AND a.attnum = i.indkey[0] WHERE a.attname = 'category' AND i.indisvalid}),
	'5', 'the index twin is on the parent and each leaf');
$node->safe_psql('postgres', "SET zdd.complete_quiet_period = 0; SELECT zdd.complete($id)");
is($node->safe_psql('postgres', "SELECT phase FROM zdd.transition WHERE id = $id"), 'completed', 'complete');
server_logs_clean($node);
$node->stop;
done_testing();
