# Background workers: one per configured database, reloadable list and interval, restart
# after termination, quiet skip of databases without the extension, recovery after a
# failing round, nothing on a standby until promotion.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_batchguard'
batchguard.database_names = 'postgres, db2'
batchguard.cleanup_interval = 1
batchguard.finished_batch_retention = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_batchguard');

sub workers_of {
    my ($db) = @_;
    return $node->safe_psql('postgres',
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_batchguard worker' AND datname = '$db'");
}
sub worker_pid {
    my ($db) = @_;
    return $node->safe_psql('postgres',
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_batchguard worker' AND datname = '$db'");
}
sub wait_for_workers {
    my ($db, $count) = @_;
    return $node->poll_query_until('postgres',
        "SELECT count(*) = $count FROM pg_stat_activity WHERE backend_type = 'pg_batchguard worker' AND datname = '$db'");
}
# A batch that is finished (and so purged at once with a retention of 0).
sub finished_batch {
    my ($db, $job) = @_;
    $node->safe_psql($db, "SELECT batchguard.save_checkpoint('$job', '{a}', '[]', 1)");
}
sub batch_exists {
    my ($db, $job) = @_;
    return $node->safe_psql($db, "SELECT count(*) FROM batchguard.batches WHERE job_id = '$job'");
}

ok(wait_for_workers('postgres', 1), 'a worker runs for the configured database');
is($node->safe_psql('postgres',
    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_batchguard launcher'"),
    '1', 'the launcher shows in pg_stat_activity with its backend_type');
is(workers_of('db2'), '0', 'no worker for a listed database that does not exist');

# A finished batch is purged within a round or two; an unfinished one stays.
finished_batch('postgres', 'done');
$node->safe_psql('postgres', "SELECT batchguard.save_checkpoint('running', '{a}', '[]', 2)");
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM batchguard.batches WHERE job_id = 'done'"),
    'finished batch purged by the worker');
is(batch_exists('postgres', 'running'), '1', 'running batch kept');

# A database without the extension is skipped quietly, then picked up once it has it.
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', 'CREATE DATABASE db2');
ok(wait_for_workers('db2', 1), 'the launcher starts a worker for a database created later');
sleep 3;    # a few rounds
unlike(slurp_file($node->logfile, $log_offset), qr/ERROR|FATAL/,
    'no error in the log for a database without the extension');
$node->safe_psql('db2', 'CREATE EXTENSION pg_batchguard');
finished_batch('db2', 'done2');
ok($node->poll_query_until('db2', "SELECT count(*) = 0 FROM batchguard.batches"),
    'CREATE EXTENSION: the database is maintained without a restart');

# pg_terminate_backend: the launcher brings the worker back.
my $old_pid = worker_pid('postgres');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($old_pid)");
ok($node->poll_query_until('postgres',
    "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_batchguard worker'"
    . " AND datname = 'postgres' AND pid <> $old_pid"), 'a terminated worker is restarted');

# SIGTERM stops a worker promptly (it sleeps on its latch, which the signal sets).
$old_pid = worker_pid('postgres');
my $start = time;
kill 'TERM', $old_pid;
usleep(20_000) while kill(0, $old_pid) && time - $start < 10;
my $stopped_after = time - $start;
ok(!kill(0, $old_pid), 'SIGTERM stops the worker');
note(sprintf('worker stopped %.3f s after SIGTERM', $stopped_after));
ok($stopped_after < 1, 'within a second');

# SIGHUP: the database list is reloaded without a restart.
$node->append_conf('postgresql.conf', "batchguard.database_names = 'db2'");
$node->reload;
ok(wait_for_workers('postgres', 0), 'a database removed from the list loses its worker');
is(workers_of('db2'), '1', 'the other database keeps its worker');
$node->append_conf('postgresql.conf', "batchguard.database_names = 'postgres, db2'");
$node->reload;
ok(wait_for_workers('postgres', 1), 'a database added to the list gets a worker');

# SIGHUP: a new interval applies at once.
$node->append_conf('postgresql.conf', 'batchguard.cleanup_interval = 3600');
$node->reload;
sleep 2;
finished_batch('postgres', 'slow');
sleep 3;
is(batch_exists('postgres', 'slow'), '1', 'with an hourly interval nothing happens for seconds');
$node->append_conf('postgresql.conf', 'batchguard.cleanup_interval = 1');
$node->reload;
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM batchguard.batches WHERE job_id = 'slow'"),
    'back to one second: purged promptly after the reload');

# A failing step is logged once per round with its context (each step runs in a
# transaction of its own: the two steps that read batches fail, the others run), and the
# next rounds recover.
$log_offset = -s $node->logfile;
$node->safe_psql('postgres', 'ALTER TABLE batchguard.batches RENAME TO batches_away');
sleep 3;
$node->safe_psql('postgres', 'ALTER TABLE batchguard.batches_away RENAME TO batches');
my $log = slurp_file($node->logfile, $log_offset);
my @errors = ($log =~ /ERROR:.*batches.*does not exist/g);
ok(@errors >= 1 && @errors <= 2 * 5,
    'one error per failing step and round while broken (' . scalar(@errors) . ' in 3 s)');
like($log, qr/(?:CONTEXT:  |\t)pg_batchguard maintenance: (?:expired leases|finished batches)$/m,
    'the error names the step');
like($log, qr/CONTEXT:[^\n]*\n(?:\t[^\n]*\n)*\tpg_batchguard maintenance round in database "postgres"/,
    'the error names the round and the database');
is(worker_pid('postgres') ne '', 1, 'the worker survived its failing rounds');
finished_batch('postgres', 'after');
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM batchguard.batches WHERE job_id = 'after'"),
    'rounds work again once the cause is fixed');

# On a standby nothing runs until promotion.
$node->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'base', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);
sleep 2;
is($standby->safe_psql('postgres',
    "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'pg_batchguard%'"),
    '0', 'no launcher or worker on a standby');
$standby->promote;
ok($standby->poll_query_until('postgres',
    "SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'pg_batchguard worker'"),
    'workers start after promotion');
$standby->stop;

$node->stop;
done_testing();
