# Point-in-time recovery: a base backup, then backups and deletes; a copy recovered to a
# named restore point between an export and later deletes has every backup whose row
# exists at that point readable (in-database storage: the backup bytes are in the WAL
# with the row), nothing orphaned or missing. The copy shares the primary's backup
# directory (outside the data directory, inherited from postgresql.conf): its workers
# never sweep, quarantine or mark anything in the primary's folder, which holds a file the
# copy has no row for; its own file-storage backups go to a folder of its own.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $shared = PostgreSQL::Test::Utils::tempdir();
my $primary = PostgreSQL::Test::Cluster->new('pitr_primary');
$primary->init(has_archiving => 1, allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_batchguard'
batchguard.database_names = 'postgres'
batchguard.cleanup_interval = 1
batchguard.backup_directory = '$shared'
});
$primary->start;
$primary->safe_psql('postgres', q{
CREATE EXTENSION pg_batchguard;
CREATE TABLE docs (id int PRIMARY KEY, body text);
CREATE TABLE notes (id int PRIMARY KEY, doc_id int REFERENCES docs ON DELETE CASCADE, body text);
INSERT INTO docs SELECT g, repeat('doc ', 100) || g FROM generate_series(1, 50) g;
INSERT INTO notes SELECT g, 1 + g % 50, 'note ' || g FROM generate_series(1, 200) g;
});
sub export_to {
    my ($node, $storage, $ids, $label) = @_;
    return $node->safe_psql('postgres', qq{
        SET batchguard.backup_storage = '$storage';
        SELECT backup_id FROM batchguard.export_backup('docs', '$ids', label => '$label')});
}
my $early_file = export_to($primary, 'file', '{1}', 'file before the base backup');
$primary->backup('base');

# Between the base backup and the restore point.
my $in_db = export_to($primary, 'database', '{2,3}', 'database');
my $deleted = $primary->safe_psql('postgres',
    q{SELECT batchguard.delete_with_backup('docs', '{4,5}') -> 'backup' ->> 'backup_id'});
my $in_file = export_to($primary, 'file', '{6}', 'file');
$primary->safe_psql('postgres', "SELECT pg_create_restore_point('between')");
# After the restore point: more deletes, a backup deleted, and a new file backup.
$primary->safe_psql('postgres', "SELECT batchguard.delete_backup('$in_db')");
$primary->safe_psql('postgres', q{SELECT batchguard.delete_with_backup('docs', '{7,8}')});
my $later_file = export_to($primary, 'file', '{9}', 'file after the restore point');
my $folder = $primary->safe_psql('postgres',
    "SELECT file_folder FROM batchguard.backups WHERE backup_id = '$later_file'");
my $later_path = $primary->safe_psql('postgres', qq{
    SELECT '$shared/' || file_folder || '/' || backup_id || '-' || creating_xid || '.jsonl.zst'
      FROM batchguard.backups WHERE backup_id = '$later_file'});
ok(-f $later_path, 'the later file backup is in the shared directory');
my $segment = $primary->safe_psql('postgres', 'SELECT pg_walfile_name(pg_current_wal_lsn())');
$primary->safe_psql('postgres', 'SELECT pg_switch_wal()');
$primary->poll_query_until('postgres', "SELECT last_archived_wal >= '$segment' FROM pg_stat_archiver")
    or die 'the WAL was not archived';

# The copy, recovered to the restore point and promoted.
my $copy = PostgreSQL::Test::Cluster->new('pitr_copy');
$copy->init_from_backup($primary, 'base', has_restoring => 1, standby => 0);
$copy->append_conf('postgresql.conf', q{
recovery_target_name = 'between'
recovery_target_action = 'promote'
});
$copy->start;
$copy->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'the copy did not finish recovery';

is($copy->safe_psql('postgres', 'SELECT count(*) FROM docs'), '48', 'the copy is at the restore point (4 and 5 deleted, 7 and 8 not)');
is($copy->safe_psql('postgres', q{
    SELECT string_agg(coalesce(label, 'delete') || ':' || status, ', ' ORDER BY created_at)
      FROM batchguard.get_user_backups()}),
    'file before the base backup:ok, database:ok, delete:ok, file:ok',
    'every backup whose row exists at the restore point is ok');
for my $id ($early_file, $in_db, $deleted, $in_file) {
    is($copy->safe_psql('postgres', qq{
        SELECT encode(sha256(batchguard.read_backup('$id')), 'hex') = file_sha256
          FROM batchguard.backups WHERE backup_id = '$id'}), 't', "backup $id is readable, SHA-256 verified");
}
is($copy->safe_psql('postgres', qq{
    SELECT (batchguard.restore_backup('$deleted') ->> 'inserted')::bigint = total_rows AND total_rows > 2
      FROM batchguard.backups WHERE backup_id = '$deleted'}), 't',
    'the delete made before the restore point can be restored on the copy');

# Maintenance on the copy: nothing orphaned, nothing missing, the primary's folder untouched.
my $round = $copy->safe_psql('postgres', q{
    SELECT (r ->> 'orphan_files_removed') || ' ' || (r ->> 'missing_files') || ' ' || (r ->> 'unreadable_files')
      FROM batchguard.run_maintenance() r});
is($round, '0 0 0', 'a maintenance round on the copy quarantines nothing and marks nothing missing');
ok($copy->wait_for_log(qr/backup folder "\Q$shared\E\/$folder" belongs to another server/),
    "the copy's worker logs that the primary's folder is not its own");
# Two more rounds of the copy's worker.
for (1 .. 2) {
    my $now = $copy->safe_psql('postgres', 'SELECT clock_timestamp()');
    $copy->poll_query_until('postgres', qq{
        SELECT count(*) = 1 FROM pg_stat_activity
         WHERE backend_type = 'pg_batchguard worker' AND query_start > '$now'}) or die 'no worker round';
}
ok(-f $later_path, "the primary's file that the copy has no row for is still there");
is($primary->safe_psql('postgres', qq{
    SELECT encode(sha256(batchguard.read_backup('$later_file')), 'hex') = file_sha256
      FROM batchguard.backups WHERE backup_id = '$later_file'}), 't', 'and the primary reads it');
is($copy->safe_psql('postgres', q{SELECT count(*) FROM batchguard.backups WHERE status <> 'ok'}), '0',
    'no row of the copy is marked anything but ok');

# A file backup made on the copy goes to a folder of the copy's own.
my $copy_file = export_to($copy, 'file', '{10}', 'made on the copy');
my $copy_folder = $copy->safe_psql('postgres',
    "SELECT file_folder FROM batchguard.backups WHERE backup_id = '$copy_file'");
isnt($copy_folder, $folder, "the copy's file backups go to a folder of its own ($copy_folder)");
like($copy_folder, qr/^$folder-[0-9a-f]{16}$/, 'named after the database and the copy');

$copy->stop;
$primary->stop;
done_testing();
