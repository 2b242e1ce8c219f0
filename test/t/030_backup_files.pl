# Backup files on disk: readable by zstd and jq; crash (immediate shutdown) in the middle
# of an export and just after its commit; a flipped byte and a truncated file are caught
# by read_backup and backup_rows; an unwritable directory is a clear error and no row.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use File::Path qw(make_path);

my $node = PostgreSQL::Test::Cluster->new('backup');
$node->init;
$node->append_conf('postgresql.conf', "max_prepared_transactions = 5\nshared_preload_libraries = 'pg_batchguard'\nbatchguard.backup_storage = 'file'\n");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION pg_batchguard;
CREATE TABLE parent (id bigint PRIMARY KEY, name text);
CREATE TABLE child (id bigint PRIMARY KEY, parent_id bigint REFERENCES parent, body text);
INSERT INTO parent SELECT g, 'parent ' || g FROM generate_series(1, 2000) g;
INSERT INTO child SELECT g, g % 2000 + 1, repeat('body ', 20) || g FROM generate_series(1, 10000) g;
});
my $dboid = $node->safe_psql('postgres',
    "SELECT oid FROM pg_database WHERE datname = current_database()");
my $dir = $node->data_dir . "/pg_batchguard/$dboid";

sub file_of {
    my ($id) = @_;
    my $xid = $node->safe_psql('postgres',
        "SELECT creating_xid FROM batchguard.backups WHERE backup_id = '$id'");
    return "$dir/$id-$xid.jsonl.zst";
}
sub files { opendir(my $d, $dir) or return (); my @f = grep { /\.jsonl\.zst$/ } readdir($d); return @f; }
sub error_of { return error_of_in('postgres', @_); }
sub error_of_in {
    my ($db, $sql) = @_;
    my ($ret, $out, $err) = $node->psql($db, $sql);
    $err =~ s/\n.*//s;
    return $ret == 0 ? 'ok' : $err;
}

# 1. zstd and jq read the file: header, one line per row, trailer.
my $id = $node->safe_psql('postgres',
    "SELECT backup_id FROM batchguard.export_backup('parent', '{1,2,3}')");
my $file = file_of($id);
ok(-f $file, 'the file exists under <directory>/<database oid>/<id>-<xid>.jsonl.zst');
is(sprintf('%04o', (stat $file)[2] & 07777), '0600', 'the file has mode 0600');
SKIP: {
    skip 'zstd or jq not installed', 4
      unless system('zstd --version >/dev/null 2>&1') == 0 && system('jq --version >/dev/null 2>&1') == 0;
    my $lines = `zstd -dc '$file' | jq -c . | wc -l`;
    chomp $lines;
    is($lines + 0, 2 + 3 + 15, 'zstd -dc FILE | jq . reads every line (header, 18 rows, trailer)');
    is(`zstd -dc '$file' | jq -r 'select(.format) | .format'`, "pg_batchguard backup\n", 'header line');
    is(`zstd -dc '$file' | jq -r 'select(.trailer) | .total_rows'`, "18\n", 'trailer line');
    is(system("zstd -tq '$file'"), 0, 'zstd -t verifies the frame checksum');
}

# 2. A crash in the middle of an export leaves an orphan file and no row. The export is
# held inside its second query by a lock on the child table.
my ($in, $out, $err) = ('', '', '');
my $locker = IPC::Run::start(['psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres')],
    '<', \$in, '>', \$out, '2>', \$err);
$in .= "BEGIN; LOCK TABLE child IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n";
$locker->pump until $out =~ /locked/;
my $before = scalar(files());
my $count_before;
my ($eout, $eerr) = ('', '');
my $exporter = IPC::Run::start(['psql', '-XAtq', '-d', $node->connstr('postgres'), '-c',
    "SELECT batchguard.export_backup('parent', label => 'interrupted')"], '>', \$eout, '2>', \$eerr);
ok($node->poll_query_until('postgres',
    "SELECT count(*) > 0 FROM pg_locks WHERE relation = 'child'::regclass AND NOT granted"),
    'the export waits for the child table');
is(scalar(files()), $before + 1, 'the export has created its file');
is($node->safe_psql('postgres', q{
    SELECT phase || ' ' || (rows_written > 0) || ' ' || (bytes_written >= 0) || ' ' || datname
      FROM batchguard.export_progress}),
    'writing rows true true postgres', 'export_progress shows the running export');
$node->safe_psql('postgres', 'CREATE ROLE watcher');
is($node->safe_psql('postgres', 'SET ROLE watcher; SELECT count(*) FROM batchguard.export_progress'),
    '0', "another role does not see someone else's export");
$node->stop('immediate');
$locker->kill_kill;
$exporter->kill_kill;
$node->start;
is($node->safe_psql('postgres', 'SELECT count(*) FROM batchguard.export_progress'), '0',
    'no export in progress after the restart');
is($node->safe_psql('postgres', "SELECT count(*) FROM batchguard.backups WHERE label = 'interrupted'"),
    '0', 'no row for the interrupted export');
my %known = map { $_ => 1 } split /\n/, $node->safe_psql('postgres',
    "SELECT backup_id || '-' || creating_xid || '.jsonl.zst' FROM batchguard.backups");
my @orphans = grep { !$known{$_} } files();
is(scalar(@orphans), 1, 'its file is an orphan: a file without a row');

# 2b. A cancelled export (pg_cancel_backend, statement_timeout) leaves nothing behind.
$count_before = scalar(files());
($in, $out, $err) = ('', '', '');
$locker = IPC::Run::start(['psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres')],
    '<', \$in, '>', \$out, '2>', \$err);
$in .= "BEGIN; LOCK TABLE child IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n";
$locker->pump until $out =~ /locked/;
($eout, $eerr) = ('', '');
$exporter = IPC::Run::start(['psql', '-XAtq', '-d', $node->connstr('postgres'), '-c',
    "SELECT batchguard.export_backup('parent', label => 'cancelled')"], '>', \$eout, '2>', \$eerr);
$node->poll_query_until('postgres',
    "SELECT count(*) > 0 FROM pg_locks WHERE relation = 'child'::regclass AND NOT granted");
is(scalar(files()), $count_before + 1, 'the blocked export has a file');
$node->safe_psql('postgres', q{
    SELECT pg_cancel_backend(pid) FROM pg_locks WHERE relation = 'child'::regclass AND NOT granted});
$exporter->finish;
like($eerr, qr/canceling statement due to user request/, 'pg_cancel_backend cancels the export');
is(scalar(files()), $count_before, 'the cancelled export removed its file');
like(error_of("SET statement_timeout = '50ms'; SELECT batchguard.export_backup('parent', label => 'timeout')"),
    qr/canceling statement due to statement timeout/, 'statement_timeout cancels the export');
is(scalar(files()), $count_before, 'and leaves no file');
$in .= "ROLLBACK;\n";
$locker->finish;
is($node->safe_psql('postgres', "SELECT count(*) FROM batchguard.backups WHERE label IN ('cancelled', 'timeout')"),
    '0', 'and no row');

# 3. A crash just after the commit: the committed row has an intact file.
my $committed = $node->safe_psql('postgres',
    "SELECT backup_id FROM batchguard.export_backup('parent', label => 'committed')");
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres',
    "SELECT length(batchguard.read_backup('$committed')) = compressed_bytes FROM batchguard.backups WHERE backup_id = '$committed'"),
    't', 'after the crash the committed backup reads back whole (SHA-256 verified)');
is($node->safe_psql('postgres', "SELECT count(*) FROM batchguard.backup_rows('$committed')"),
    '12000', 'and all its rows come back');
is($node->safe_psql('postgres', q{
    SELECT count(*) FROM batchguard.backups b
     WHERE batchguard.get_backup(b.backup_id) IS NULL OR (batchguard.get_backup(b.backup_id)).status <> 'ok'}),
    '0', 'every committed row has its file');

# 3b. pg_dump carries the rows, not the files: in a restored copy (a new database) the file
# backup is detached until attach_backup_files() (094_storage_dump_upgrade.pl).
$node->safe_psql('postgres', 'CREATE DATABASE restored');
my ($dump_out, $dump_err) = ('', '');
IPC::Run::run(['pg_dump', '-d', $node->connstr('postgres')], '|',
    ['psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('restored')],
    '>', \$dump_out, '2>', \$dump_err) or die "dump and restore failed: $dump_err";
is($node->safe_psql('restored', "SELECT (batchguard.get_backup('$committed')).status"), 'detached',
    'after pg_dump and restore the row is there and shows status detached');
like(error_of_in('restored', "SELECT batchguard.read_backup('$committed')"),
    qr/backup .* is not attached to this database/, 'and reading it says so');

# 4. A flipped byte and a truncated file are caught by read_backup and backup_rows.
my $victim = $node->safe_psql('postgres',
    "SELECT backup_id FROM batchguard.export_backup('parent', '{5,6,7}', label => 'victim')");
my $vfile = file_of($victim);
my $size = -s $vfile;
open(my $fh, '+<:raw', $vfile) or die "open: $!";
seek($fh, int($size / 2), 0);
read($fh, my $byte, 1);
seek($fh, int($size / 2), 0);
print $fh chr(ord($byte) ^ 0x01);
close($fh);
like(error_of("SELECT batchguard.read_backup('$victim')"), qr/is corrupt: its SHA-256 does not match/,
    'read_backup detects a flipped byte');
like(error_of("SELECT count(*) FROM batchguard.backup_rows('$victim')"), qr/corrupt|checksum/,
    'backup_rows detects a flipped byte');
my $cut = $node->safe_psql('postgres',
    "SELECT backup_id FROM batchguard.export_backup('parent', '{8}', label => 'cut')");
my $cfile = file_of($cut);
truncate($cfile, (-s $cfile) - 7) or die "truncate: $!";
like(error_of("SELECT batchguard.read_backup('$cut')"), qr/is corrupt/, 'read_backup detects truncation');
like(error_of("SELECT count(*) FROM batchguard.backup_rows('$cut')"), qr/truncated/,
    'backup_rows detects truncation');
is(error_of("SELECT length(batchguard.read_backup('$cut', 0, 5))"), 'ok', 'a chunk still comes as stored');

# 5. An unwritable backup directory: a clear error, and no row.
my $ro = PostgreSQL::Test::Utils::tempdir() . '/readonly';
make_path($ro);
chmod 0555, $ro;
$node->append_conf('postgresql.conf', "batchguard.backup_directory = '$ro/backups'\n");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('batchguard.backup_directory') LIKE '%readonly%'");
like(error_of("SELECT batchguard.export_backup('parent', '{1}', label => 'unwritable')"),
    qr/could not create backup directory ".*readonly\/backups": Permission denied/,
    'an unwritable directory is a clear error');
is($node->safe_psql('postgres', "SELECT count(*) FROM batchguard.backups WHERE label = 'unwritable'"),
    '0', 'and leaves no row');
like(error_of("LOAD 'pg_batchguard'; SET batchguard.backup_directory = '/tmp'"), qr/cannot be changed now/,
    'the directory cannot be set in a session');
$node->safe_psql('postgres', 'CREATE ROLE plain');
like(error_of("SET ROLE plain; SELECT batchguard.current_owner(); SHOW batchguard.backup_directory"),
    qr/must be superuser/, 'only superusers see the directory');

# 6. PREPARE TRANSACTION is refused while an export is pending; abort removes the file.
$node->append_conf('postgresql.conf', "batchguard.backup_directory = 'pg_batchguard'\n");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('batchguard.backup_directory') = 'pg_batchguard'");
my $count = scalar(files());
my ($ret, $prepare_out, $prepare_err) = $node->psql('postgres',
    "BEGIN; SELECT batchguard.export_backup('parent', '{1}'); PREPARE TRANSACTION 'p';\n\\echo :SQLSTATE",
    on_error_stop => 0);
like($prepare_err, qr/cannot PREPARE a transaction that has exported or deleted a backup/, 'PREPARE refused');
like($prepare_out, qr/^0A000$/m, 'with SQLSTATE 0A000');
is(scalar(files()), $count, 'the refused transaction left no file');

done_testing();
