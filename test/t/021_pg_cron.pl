# Without the workers, pg_cron schedules the cleanup: an expired backup (row and file)
# disappears, an unexpired one stays. pg_cron schedules by the minute: allow ~2.5 minutes.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_cron,pg_batchguard'
batchguard.enable_worker = off
batchguard.database_names = 'postgres'
batchguard.backup_storage = 'file'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 16
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_cron');
$node->safe_psql('postgres', 'CREATE EXTENSION pg_batchguard');
$node->safe_psql('postgres', "CREATE TABLE t (id int PRIMARY KEY, v text);
    INSERT INTO t SELECT g, 'x' FROM generate_series(1, 10) g");

is($node->safe_psql('postgres',
    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_batchguard worker'"),
    '0', 'with enable_worker = off no maintenance worker runs');

my $folder = $node->data_dir . '/pg_batchguard/'
    . $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = 'postgres'");
sub export {
    my ($label) = @_;
    my $row = $node->safe_psql('postgres',
        "SELECT backup_id || '-' || creating_xid FROM batchguard.export_backup('t', label => '$label')");
    my ($id) = $row =~ /^(.{36})/;
    return ($id, "$folder/$row.jsonl.zst");
}
my ($expired, $expired_file) = export('expired');
my ($kept, $kept_file) = export('kept');
$node->safe_psql('postgres',
    "UPDATE batchguard.backups SET expires_at = now() - interval '1 second' WHERE backup_id = '$expired'");
ok(-f $expired_file && -f $kept_file, 'both files exist');

$node->safe_psql('postgres',
    "SELECT cron.schedule('batchguard-cleanup', '* * * * *', 'SELECT batchguard.cleanup_expired_backups()')");
my $start = time;
usleep(500_000)
    while $node->safe_psql('postgres', "SELECT count(*) FROM batchguard.backups WHERE backup_id = '$expired'") ne '0'
    && time - $start < 150;
note(sprintf('removed after %.0f s', time - $start));
is($node->safe_psql('postgres', "SELECT count(*) FROM batchguard.backups WHERE backup_id = '$expired'"),
    '0', 'the pg_cron job removed the expired backup');
ok(!-e $expired_file, 'and its file');
ok(-f $kept_file, 'the unexpired backup keeps its file');
is($node->safe_psql('postgres', "SELECT count(*) FROM batchguard.backups WHERE backup_id = '$kept'"), '1',
    'and its row');
ok($node->poll_query_until('postgres',
    "SELECT count(*) > 0 FROM cron.job_run_details WHERE status = 'succeeded' AND command LIKE '%cleanup_expired_backups%'"),
    'the job ran and succeeded');
like(slurp_file($node->logfile), qr/pg_batchguard: 1 expired backups removed \(all owners\)/,
    'the cleanup logged what it removed');

$node->stop;
done_testing();
