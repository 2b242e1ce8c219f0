# Background workers: one per configured database, reloadable list and interval, restart
# after termination (at most once a second) and after a crash, quiet skip of databases
# without the extension, no CPU while idle, SIGTERM wakes a sleeping worker, one logged
# error per failing round and recovery, DROP DATABASE of a listed database refused,
# nothing on a standby until promotion, a misspelt setting reported.
#
# No assertion depends on the machine's speed: the test waits for conditions (a round
# with a given number, a process gone), each wait bounded generously by poll_query_until
# (180 s by default). A worker shows its round in pg_stat_activity.query ("pg_batchguard
# maintenance round N"), and a round's error names it in its CONTEXT.
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
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_batchguard');

my $worker_where = "backend_type = 'pg_batchguard worker' AND datname = ";
sub workers_of {
    my ($db) = @_;
    return $node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE ${worker_where}'$db'");
}
sub worker_pid {
    my ($db) = @_;
    return $node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE ${worker_where}'$db'");
}
sub wait_for_workers {
    my ($db, $count) = @_;
    return $node->poll_query_until('postgres',
        "SELECT count(*) = $count FROM pg_stat_activity WHERE ${worker_where}'$db'");
}
# The number of the round the database's worker runs or ran last (0 before its first).
sub round_of {
    my ($db) = @_;
    return $node->safe_psql('postgres',
        "SELECT coalesce(max(substring(query from 'round (\\d+)')::int), 0) FROM pg_stat_activity"
        . " WHERE ${worker_where}'$db'");
}
# Waits until round $n of the database's worker has finished.
sub wait_for_round_done {
    my ($db, $n) = @_;
    return $node->poll_query_until('postgres',
        "SELECT count(*) = 1 FROM pg_stat_activity WHERE ${worker_where}'$db'"
        . " AND (substring(query from 'round (\\d+)')::int > $n"
        . "      OR (substring(query from 'round (\\d+)')::int = $n AND state = 'idle'))");
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

# A finished batch is purged by a round; an unfinished one stays.
finished_batch('postgres', 'done');
$node->safe_psql('postgres', "SELECT batchguard.save_checkpoint('running', '{a}', '[]', 2)");
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM batchguard.batches WHERE job_id = 'done'"),
    'finished batch purged by the worker');
is(batch_exists('postgres', 'running'), '1', 'running batch kept');

# A database without the extension is skipped quietly, then picked up once it has it.
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', 'CREATE DATABASE db2');
ok(wait_for_workers('db2', 1), 'the launcher starts a worker for a database created later');
ok(wait_for_round_done('db2', 2), 'its worker has run two rounds');
unlike(slurp_file($node->logfile, $log_offset), qr/ERROR|FATAL/,
    'no error in the log for a database without the extension');
$node->safe_psql('db2', 'CREATE EXTENSION pg_batchguard');
finished_batch('db2', 'done2');
ok($node->poll_query_until('db2', "SELECT count(*) = 0 FROM batchguard.batches"),
    'CREATE EXTENSION: the database is maintained without a restart');

# pg_terminate_backend: the launcher brings the worker back, but restarts a worker at most
# once a second: terminated again at once, the next one starts a second after the last.
my $old_pid = worker_pid('postgres');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($old_pid)");
ok($node->poll_query_until('postgres',
    "SELECT count(*) = 1 FROM pg_stat_activity WHERE ${worker_where}'postgres' AND pid <> $old_pid"),
    'a terminated worker is restarted');
my ($pid1, $start1) = split /\|/, $node->safe_psql('postgres',
    "SELECT pid, extract(epoch FROM backend_start) FROM pg_stat_activity WHERE ${worker_where}'postgres'");
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid1)");
ok($node->poll_query_until('postgres',
    "SELECT count(*) = 1 FROM pg_stat_activity WHERE ${worker_where}'postgres' AND pid <> $pid1"),
    'terminated again at once, it is restarted again');
my $start2 = $node->safe_psql('postgres',
    "SELECT extract(epoch FROM backend_start) FROM pg_stat_activity WHERE ${worker_where}'postgres'");
note(sprintf('restarted %.3f s after the previous start', $start2 - $start1));
cmp_ok($start2 - $start1, '>=', 0.9, 'not sooner than a second after the previous start');

# A crashed worker (SIGKILL: the postmaster restarts every process) comes back too.
$old_pid = worker_pid('postgres');
$log_offset = -s $node->logfile;
kill 'KILL', $old_pid;
$node->wait_for_log(qr/database system is ready to accept connections/, $log_offset);
ok($node->poll_query_until('postgres',
    "SELECT count(*) = 1 FROM pg_stat_activity WHERE ${worker_where}'postgres' AND pid <> $old_pid"),
    'a crashed worker comes back after the restart');

# With an hourly interval a worker sleeps between rounds. One started under that setting
# (terminated, so that the launcher starts a new one) runs its first round, then sleeps:
# no CPU, no wake-up; SIGTERM wakes it through its latch and it exits.
$node->append_conf('postgresql.conf', 'batchguard.cleanup_interval = 3600');
$node->reload;
$old_pid = worker_pid('postgres');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($old_pid)");
ok($node->poll_query_until('postgres',
    "SELECT count(*) = 1 FROM pg_stat_activity WHERE ${worker_where}'postgres' AND pid <> $old_pid"),
    'a new worker under the hourly interval');
my $sleeper = worker_pid('postgres');
ok(wait_for_round_done('postgres', 1), 'it ran its first round');
sub cpu_and_wakeups {
    my ($pid) = @_;
    my @stat = split ' ', (slurp_file("/proc/$pid/stat") =~ s/^.*\) //sr);
    my ($switches) = slurp_file("/proc/$pid/status") =~ /^voluntary_ctxt_switches:\s+(\d+)/m;
    return ($stat[11] + $stat[12], $switches);    # utime + stime (ticks); sleeps
}
SKIP: {
    skip 'no /proc', 2 unless -r "/proc/$sleeper/stat";
    my ($cpu0, $wakeups0) = cpu_and_wakeups($sleeper);
    sleep 2;    # an observation period, not a deadline: an idle worker does nothing in it
    my ($cpu1, $wakeups1) = cpu_and_wakeups($sleeper);
    note("idle worker over 2 s: " . ($cpu1 - $cpu0) . " CPU ticks, " . ($wakeups1 - $wakeups0) . ' wake-ups');
    cmp_ok($cpu1 - $cpu0, '<=', 1, 'an idle worker uses no CPU');
    cmp_ok($wakeups1 - $wakeups0, '<=', 1, 'and does not wake up');
}
is(round_of('postgres'), '1', 'and runs no other round');
my $start = time;
kill 'TERM', $sleeper;
usleep(20_000) while kill(0, $sleeper) && time - $start < 60;
ok(!kill(0, $sleeper), 'SIGTERM stops a worker that sleeps for an hour (its latch wakes it)');
note(sprintf('worker stopped %.3f s after SIGTERM', time - $start));

# SIGHUP: a new interval applies at once. The worker started under the hourly interval
# keeps a finished batch; back to one second, it is purged promptly after the reload.
ok(wait_for_workers('postgres', 1), 'the launcher starts it again');
ok(wait_for_round_done('postgres', 1), 'it ran its first round');
finished_batch('postgres', 'slow');
sleep 2;    # an observation period: nothing is due for an hour
is(batch_exists('postgres', 'slow'), '1', 'with an hourly interval no round purges it');
$node->append_conf('postgresql.conf', 'batchguard.cleanup_interval = 1');
$node->reload;
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM batchguard.batches WHERE job_id = 'slow'"),
    'back to one second: purged after the reload');

# SIGHUP: the database list is reloaded without a restart.
$node->append_conf('postgresql.conf', "batchguard.database_names = 'db2'");
$node->reload;
ok(wait_for_workers('postgres', 0), 'a database removed from the list loses its worker');
is(workers_of('db2'), '1', 'the other database keeps its worker');
$node->append_conf('postgresql.conf', "batchguard.database_names = 'postgres, db2'");
$node->reload;
ok(wait_for_workers('postgres', 1), 'a database added to the list gets a worker');

# A failing step is logged once, with its context, and the next rounds recover: each step
# runs in a transaction of its own (the steps that read batches fail, the others run), and
# each round that ran while the table was away logged exactly one error per failing step,
# naming the step, the round and the database.
my $worker = worker_pid('postgres');
ok(wait_for_round_done('postgres', 1), 'the worker ran a round');
$log_offset = -s $node->logfile;
$node->safe_psql('postgres', 'ALTER TABLE batchguard.batches RENAME TO batches_away');
my $broken_from = round_of('postgres') + 1;    # the first round that starts after the rename
ok(wait_for_round_done('postgres', $broken_from + 2), 'three rounds ran while the table was away');
$node->safe_psql('postgres', 'ALTER TABLE batchguard.batches_away RENAME TO batches');
my $fixed_from = round_of('postgres') + 1;
finished_batch('postgres', 'after');
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM batchguard.batches WHERE job_id = 'after'"),
    'rounds work again once the cause is fixed');
ok(wait_for_round_done('postgres', $fixed_from), 'a round after the fix has finished');
my $log = slurp_file($node->logfile, $log_offset);
# One record per message: the log's lines start with a timestamp, and a message's QUERY,
# CONTEXT, DETAIL, HINT and STATEMENT lines belong to the message before them.
my @records;
for my $line (split /^(?=\d{4}-\d\d-\d\d )/m, $log) {
    if (@records && $line =~ /^\S+ \S+ \S+ \[\d+\] [^\n]*?(?:QUERY|CONTEXT|DETAIL|HINT|STATEMENT):  /) {
        $records[-1] .= $line;
    } else {
        push @records, $line;
    }
}
my %per_round;    # round => {step => errors}
for my $record (@records) {
    next unless $record =~ /ERROR:[^\n]*batches[^\n]*does not exist/;
    my ($round) = $record =~ /pg_batchguard maintenance round (\d+) in database "postgres"/;
    my ($step) = $record =~ /pg_batchguard maintenance: ([^\n]+)$/m;
    $per_round{$round // 'none'}{$step // 'none'}++;
}
note('failing rounds: '
      . join('; ', map { my $r = $_; "$r: " . join(', ', map { "$_ x$per_round{$r}{$_}" } sort keys %{ $per_round{$r} }) }
        sort keys %per_round));
ok(!exists $per_round{none}, 'every error names its round and database');
ok(!grep({ exists $_->{none} } values %per_round), 'every error names its step');
ok(scalar(grep { $_ ne 'none' && $_ >= $broken_from && $_ <= $broken_from + 2 } keys %per_round) == 3,
    'each of the three rounds while the table was away logged its errors');
ok(!grep({ grep { $_ != 1 } values %$_ } values %per_round), 'exactly one error per failing step and round');
ok(!grep({ $_ ne 'none' && $_ >= $fixed_from } keys %per_round), 'no error once the table is back');
is(worker_pid('postgres'), $worker, 'the worker survived its failing rounds (same process)');

# DROP DATABASE of a listed database fails while its worker is connected (documented);
# WITH (FORCE) terminates the worker.
my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE db2');
like($err, qr/database "db2" is being accessed by other users/, 'DROP DATABASE of a listed database fails');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_database WHERE datname = 'db2'"), '1',
    'and the database is still there');
$node->safe_psql('postgres', 'DROP DATABASE db2 WITH (FORCE)');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_database WHERE datname = 'db2'"), '0',
    'DROP DATABASE ... WITH (FORCE) drops it');

# On a standby nothing runs until promotion.
$node->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'base', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);
is($standby->safe_psql('postgres',
    "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'pg_batchguard%'"),
    '0', 'no launcher or worker on a standby');
$standby->promote;
ok($standby->poll_query_until('postgres',
    "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_batchguard worker'"),
    'workers start after promotion');
$standby->stop;

# The batchguard. prefix is reserved: a misspelt setting in postgresql.conf is reported
# when the configuration is reloaded (and the rest of the file still applies).
$log_offset = -s $node->logfile;
$node->append_conf('postgresql.conf', "batchguard.cleanup_intervall = 5\nbatchguard.cleanup_interval = 2");
$node->reload;
$node->wait_for_log(qr/invalid configuration parameter name "batchguard\.cleanup_intervall"/, $log_offset);
pass('a misspelt batchguard. setting in postgresql.conf is reported in the log');
ok($node->poll_query_until('postgres', "SELECT current_setting('batchguard.cleanup_interval') = '2s'"),
    'and the other settings of the file are applied');

$node->stop;
done_testing();
