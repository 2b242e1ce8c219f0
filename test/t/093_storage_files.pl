# File storage never deletes what it should keep and never lies about state:
# - synchronous_commit = off: delete_backup then an immediate stop, repeated; the row and
#   the file always agree (the file is unlinked only once the deletion's commit is flushed);
# - permissions: chmod 000 on the folder (and on one file) gives "unreadable", never
#   "missing"; after chmod 700 everything is ok again;
# - a missing file that comes back returns to ok;
# - orphans go to the folder's quarantine and are deleted after batchguard.quarantine_period;
# - DROP DATABASE ... WITH (FORCE): the folder is quarantined, and after the quarantine
#   period every file goes except the one of a backup on legal hold.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Copy qw(move);

my $node = PostgreSQL::Test::Cluster->new('files');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_batchguard'
batchguard.database_names = 'doomed'
batchguard.cleanup_interval = 1
batchguard.backup_storage = 'file'
batchguard.quarantine_period = '1h'
# an asynchronous commit stays unflushed until the immediate stop
wal_writer_delay = '10s'
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION pg_batchguard;
CREATE TABLE t (id int PRIMARY KEY, v text);
INSERT INTO t SELECT g, repeat('v', 200) FROM generate_series(1, 100) g;
});
my $dir = $node->data_dir . '/pg_batchguard';
sub path_of {
    my ($id, $db) = @_;
    return $node->safe_psql($db // 'postgres', qq{
        SELECT '$dir/' || file_folder || '/' || backup_id || '-' || creating_xid || '.jsonl.zst'
          FROM batchguard.backups WHERE backup_id = '$id'});
}
sub export {
    my ($label, $db) = @_;
    return $node->safe_psql($db // 'postgres',
        "SELECT backup_id FROM batchguard.export_backup('t', label => '$label')");
}
sub error_of {
    my ($sql) = @_;
    my ($ret, $out, $err) = $node->psql('postgres', $sql);
    $err =~ s/\n.*//s;
    return $ret == 0 ? 'ok' : $err;
}

# --- synchronous_commit = off: delete_backup, then the server is lost at once.
for my $try (1 .. 3) {
    my $id = export("async $try");
    my $file = path_of($id);
    ok(-f $file, "try $try: the backup has its file");
    $node->safe_psql('postgres', "SET synchronous_commit = off; SELECT batchguard.delete_backup('$id')");
    $node->stop('immediate');
    $node->start;
    my $row = $node->safe_psql('postgres', "SELECT count(*) FROM batchguard.backups WHERE backup_id = '$id'");
    is($row, -f $file ? '1' : '0', "try $try: row and file agree after the crash (row: $row)");
}

# --- Permissions: unreadable is not missing.
my $id = export('permissions');
my $file = path_of($id);
(my $folder = $file) =~ s{/[^/]+$}{};
chmod 0, $folder or die "chmod: $!";
is($node->safe_psql('postgres', "SELECT status FROM batchguard.get_backup('$id')"), 'unreadable',
    'chmod 000 on the folder: get_backup says unreadable');
like(error_of("SELECT batchguard.read_backup('$id')"),
    qr/ERROR:  the file of backup $id cannot be read: Permission denied$/, 'read_backup: cannot be read, not missing');
like(error_of("SELECT count(*) FROM batchguard.backup_rows('$id')"),
    qr/ERROR:  the file of backup $id cannot be read: Permission denied$/, 'backup_rows too');
my ($ret, $out, $err) = $node->psql('postgres',
    "\\set VERBOSITY verbose\nSELECT batchguard.read_backup('$id')");
like($err, qr/ERROR:  PB104: /, 'with SQLSTATE PB104');
like($err, qr/DETAIL:  Opening ".*" failed: Permission denied/, 'the detail names the file');
is($node->safe_psql('postgres', q{SELECT r ->> 'unreadable_files' FROM batchguard.run_maintenance() r}), '1',
    'a maintenance round counts it as unreadable');
is($node->safe_psql('postgres', "SELECT status FROM batchguard.backups WHERE backup_id = '$id'"), 'unreadable',
    'and records it so, not missing');
chmod 0700, $folder or die "chmod: $!";
is($node->safe_psql('postgres', "SELECT status FROM batchguard.get_backup('$id')"), 'ok',
    'chmod 700: ok again');
$node->safe_psql('postgres', 'SELECT batchguard.run_maintenance()');
is($node->safe_psql('postgres', "SELECT status FROM batchguard.backups WHERE backup_id = '$id'"), 'ok',
    'and the next round records ok');
chmod 0, $file or die "chmod: $!";
is($node->safe_psql('postgres', "SELECT status FROM batchguard.get_backup('$id')"), 'unreadable',
    'chmod 000 on the file itself: unreadable');
chmod 0600, $file or die "chmod: $!";
is(error_of("SELECT length(batchguard.read_backup('$id')) > 0"), 'ok', 'readable again');

# --- A missing file that comes back is ok again.
move($file, "$file.away") or die "move: $!";
is($node->safe_psql('postgres', "SELECT status FROM batchguard.get_backup('$id')"), 'missing',
    'a file moved away: missing');
like(error_of("SELECT batchguard.read_backup('$id')"), qr/ERROR:  the file of backup $id is missing$/,
    'read_backup says missing');
is($node->safe_psql('postgres', q{SELECT r ->> 'missing_files' FROM batchguard.run_maintenance() r}), '1',
    'a round marks it missing');
is($node->safe_psql('postgres', "SELECT status FROM batchguard.backups WHERE backup_id = '$id'"), 'missing',
    'recorded');
move("$file.away", $file) or die "move: $!";
is($node->safe_psql('postgres', "SELECT status FROM batchguard.get_backup('$id')"), 'ok',
    'the file is back: get_backup says ok at once');
my $log_offset = -s $node->logfile;
is($node->safe_psql('postgres', q{SELECT r ->> 'files_found_again' FROM batchguard.run_maintenance() r}), '1',
    'the next round finds it again');
is($node->safe_psql('postgres', "SELECT status FROM batchguard.backups WHERE backup_id = '$id'"), 'ok',
    'and records ok');
like(slurp_file($node->logfile, $log_offset), qr/the file of backup $id \(owner postgres\) is there again/,
    'logged');

# --- Orphans go to quarantine, and are deleted after the quarantine period.
my $xid = $node->safe_psql('postgres', 'SELECT installed_xid::text::bigint + 1 FROM batchguard.installation');
my $orphan = "00000000-0000-4000-8000-0000000000aa-$xid.jsonl.zst";
open(my $fh, '>', "$folder/$orphan") or die $!;
print $fh "orphan\n";
close $fh;
is($node->safe_psql('postgres', q{SELECT r ->> 'orphan_files_removed' FROM batchguard.run_maintenance() r}), '1',
    'a round quarantines the orphan');
ok(!-e "$folder/$orphan" && -f "$folder/quarantine/$orphan", 'it is in the quarantine, not deleted');
$node->safe_psql('postgres', 'SELECT batchguard.run_maintenance()');
ok(-f "$folder/quarantine/$orphan", 'it stays there during the quarantine period');
# Pretend the quarantine period has passed.
utime(time - 7200, time - 7200, "$folder/quarantine/$orphan") or die "utime: $!";
is($node->safe_psql('postgres', q{SELECT r ->> 'quarantined_files_deleted' FROM batchguard.run_maintenance() r}), '1',
    'after the quarantine period a round deletes it');
ok(!-e "$folder/quarantine/$orphan", 'gone');

# --- DROP DATABASE WITH (FORCE) of a database with a backup on legal hold.
$node->safe_psql('postgres', 'CREATE DATABASE doomed');
$node->safe_psql('doomed', q{
CREATE EXTENSION pg_batchguard;
CREATE TABLE t (id int PRIMARY KEY, v text);
INSERT INTO t SELECT g, 'v' FROM generate_series(1, 10) g;
});
my $held = export('held', 'doomed');
my $free = export('free', 'doomed');
$node->safe_psql('doomed', "SELECT batchguard.hold_backup('$held')");
my ($held_file, $free_file) = (path_of($held, 'doomed'), path_of($free, 'doomed'));
(my $doomed_folder = $held_file) =~ s{/[^/]+$}{};
my ($held_name, $free_name) = map { (m{([^/]+)$})[0] } ($held_file, $free_file);
ok($node->poll_query_until('postgres',
    q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_batchguard worker' AND datname = 'doomed'}),
    'a worker is connected to the database');
$node->safe_psql('postgres', 'DROP DATABASE doomed WITH (FORCE)');
ok($node->poll_query_until('postgres', "SELECT (pg_stat_file('$doomed_folder', true)).size IS NULL"),
    'the launcher moves the folder of the dropped database away');
my @quarantined = glob("$doomed_folder.dropped-*");
is(scalar(@quarantined), 1, 'into quarantine');
ok(-f "$quarantined[0]/$held_name" && -f "$quarantined[0]/$free_name", 'with both files, for now');
# Pretend the quarantine period has passed.
(my $epoch = $quarantined[0]) =~ s/.*\.dropped-//;
my $aged = $quarantined[0];
$aged =~ s/\.dropped-\d+$/'.dropped-' . ($epoch - 7200)/e;
rename($quarantined[0], $aged) or die "rename: $!";
ok($node->poll_query_until('postgres', "SELECT (pg_stat_file('$aged/$free_name', true)).size IS NULL"),
    'after the quarantine period the file of the backup without a hold is deleted');
ok(-f "$aged/$held_name", 'the file of the backup on legal hold is kept');
(my $aged_name = $aged) =~ s{.*/}{};
ok($node->wait_for_log(qr{kept \S*/\Q$aged_name/$held_name\E: its backup is on legal hold}),
    'and the log says why');

$node->stop;
done_testing();
