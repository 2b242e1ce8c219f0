# Failover with the default (in-database) storage, the way PostgreSQL's own recovery tests
# try it: a primary with a streaming standby; delete_with_backup and export_backup on the
# primary after the base backup; the standby reads every backup while in recovery
# (read_backup, backup_rows, get_backup, a restore dry run) and refuses maintenance
# clearly; the primary stops with -m immediate; the standby is promoted and
# restore_backup brings every deleted row back; pg_rewind makes the old primary a standby
# of the new one, and the backups are readable there too. A file-storage backup made on
# the old primary is reported as missing on the new one (its file was node-local), never
# as ok.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_batchguard'
batchguard.database_names = 'postgres'
batchguard.cleanup_interval = 1
wal_log_hints = on
# pg_rewind reads the old primary's WAL back to the last common checkpoint
wal_keep_size = 320MB
});
$primary->start;
$primary->safe_psql('postgres', q{
CREATE EXTENSION pg_batchguard;
CREATE TABLE conversations (id int PRIMARY KEY, title text);
CREATE TABLE turns (id int PRIMARY KEY, conversation_id int NOT NULL REFERENCES conversations ON DELETE CASCADE,
                    body text);
INSERT INTO conversations SELECT g, 'conversation ' || g FROM generate_series(1, 20) g;
INSERT INTO turns SELECT g, 1 + (g - 1) % 20, repeat('turn ', 50) || g FROM generate_series(1, 200) g;
});
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

# After the base backup: a delete with backup of five conversations (and their fifty
# turns), an export, and a file-storage export.
my $fingerprint = q{SELECT md5(string_agg(c::text, ',' ORDER BY c.id)) || ':' ||
    (SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) FROM turns t) FROM conversations c};
my $before = $primary->safe_psql('postgres', $fingerprint);
my $deleted = $primary->safe_psql('postgres', q{
    SELECT batchguard.delete_with_backup('conversations', '{1,2,3,4,5}') -> 'backup' ->> 'backup_id'});
my $exported = $primary->safe_psql('postgres',
    q{SELECT backup_id FROM batchguard.export_backup('conversations', '{6,7}', label => 'exported')});
my $file_backup = $primary->safe_psql('postgres', q{
    SET batchguard.backup_storage = 'file';
    SELECT backup_id FROM batchguard.export_backup('conversations', '{8}', label => 'file')});
is($primary->safe_psql('postgres', 'SELECT count(*) FROM conversations'), '15', 'five conversations deleted');
is($primary->safe_psql('postgres',
    "SELECT string_agg(storage, ',' ORDER BY label NULLS FIRST) FROM batchguard.backups"),
    'database,database,file', 'the default storage is the database; the file one was asked for');
my %sha = map { $_ => $primary->safe_psql('postgres',
    "SELECT file_sha256 FROM batchguard.backups WHERE backup_id = '$_'") } ($deleted, $exported);
$primary->wait_for_catchup($standby);

# --- Hot standby: reading works in recovery; maintenance says where it belongs.
sub read_all {
    my ($node, $id) = @_;
    return $node->safe_psql('postgres', qq{
        SELECT encode(sha256(batchguard.read_backup('$id')), 'hex') = file_sha256
               AND length(batchguard.read_backup('$id', 10, 100)) = 100
          FROM batchguard.get_backup('$id')});
}
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
is($standby->safe_psql('postgres', "SELECT status FROM batchguard.get_backup('$deleted')"), 'ok',
    'get_backup works on the standby');
is(read_all($standby, $deleted), 't', 'read_backup (whole and a chunk) works on the standby, SHA-256 verified');
is($standby->safe_psql('postgres', "SELECT count(*) FROM batchguard.backup_rows('$deleted')"), '55',
    'backup_rows streams the five conversations and fifty turns on the standby');
is($standby->safe_psql('postgres', qq{
    SELECT r ->> 'inserted' FROM batchguard.restore_backup('$deleted', dry_run => true) r}), '55',
    'a restore dry run works on the standby');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM batchguard.get_user_backups()'), '3',
    'get_user_backups works on the standby');
my ($ret, $out, $err) = $standby->psql('postgres', 'SELECT batchguard.run_maintenance()');
like($err, qr/ERROR:  run_maintenance\(\) cannot run on a standby/, 'run_maintenance on a standby: a clear error');
unlike($err, qr/read-only transaction/, 'not the raw read-only error');
($ret, $out, $err) = $standby->psql('postgres', 'SELECT batchguard.cleanup_expired_backups()');
like($err, qr/ERROR:  cleanup_expired_backups\(\) cannot run on a standby/, 'cleanup_expired_backups too');
is($standby->safe_psql('postgres', 'SELECT batchguard.cleanup_expired_backups(dry_run => true)'), '0',
    'a dry run only counts, on a standby too');
is($primary->safe_psql('postgres', "SELECT count(*) FROM batchguard.audit WHERE action = 'download'"), '0',
    'downloads on a standby write no audit row');
ok($standby->log_contains(qr/download of backup $deleted .* \(on a standby: not recorded in batchguard\.audit\)/),
    "they are in the standby's server log");

# --- Failover: the primary is lost, the standby takes over.
$primary->stop('immediate');
$standby->promote;
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 'f', 'the standby is promoted');
is($standby->safe_psql('postgres', "SELECT status FROM batchguard.get_backup('$exported')"), 'ok',
    'the exported backup is ok on the new primary');
is(read_all($standby, $exported), 't', 'and readable');
is($standby->safe_psql('postgres', qq{
    SELECT r ->> 'inserted' FROM batchguard.restore_backup('$deleted') r}), '55',
    'restore_backup on the new primary inserts the 55 deleted rows');
is($standby->safe_psql('postgres', $fingerprint), $before, 'every deleted row is back, byte for byte');
($ret, $out, $err) = $standby->psql('postgres', "SELECT batchguard.read_backup('$file_backup')");
like($err, qr/ERROR:  the file of backup $file_backup is missing/,
    'the file-storage backup of the old primary is missing here (its file is node-local)');
is($standby->safe_psql('postgres', "SELECT status FROM batchguard.get_backup('$file_backup')"), 'missing',
    'and get_backup says so');
my $after = $standby->safe_psql('postgres',
    q{SELECT backup_id FROM batchguard.export_backup('turns', '{100}', label => 'after failover')});

# --- pg_rewind: the old primary rejoins as a standby of the new one.
# pg_rewind copies the source's configuration files: keep the old primary's own (its port).
my $conf = slurp_file($primary->data_dir . '/postgresql.conf');
command_ok(['pg_rewind', '--source-server', $standby->connstr('postgres'),
    '--target-pgdata', $primary->data_dir, '--no-sync'], 'pg_rewind of the old primary');
open(my $fh, '>', $primary->data_dir . '/postgresql.conf') or die $!;
print $fh $conf;
close $fh;
$primary->enable_streaming($standby);
$primary->start;
$standby->wait_for_catchup($primary);
is($primary->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the old primary is a standby now');
is(read_all($primary, $deleted), 't', 'the delete backup is readable on the rewound old primary');
is(read_all($primary, $exported), 't', 'so is the exported one');
is(read_all($primary, $after), 't', 'and the one made after the failover');
is($primary->safe_psql('postgres', "SELECT count(*) FROM batchguard.backup_rows('$deleted')"), '55',
    'backup_rows there too');
is($primary->safe_psql('postgres', "SELECT file_sha256 FROM batchguard.backups WHERE backup_id = '$deleted'"),
    $sha{$deleted}, 'with the SHA-256 recorded at export');

$primary->stop;
$standby->stop;
done_testing();
