# Backup files and directories that someone changed behind the extension's back (what
# 030_backup_files.pl does not already cover): a file deleted, replaced by a symlink or by
# a directory; the database's backup directory deleted; a full file system (a small tmpfs,
# when BATCHGUARD_SMALL_FS names one the postgres user can write — mounting needs root, so
# the caller mounts it) and the storage quota settings; raw invalid bytes from the client;
# and cleanup_checkpoint racing workers that complete items. Every case must end in a clear
# error, never a crash, and leave no row without a file nor item without a batch.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use POSIX ();
use IPC::Run;
use File::Path qw(make_path remove_tree);

my $node = PostgreSQL::Test::Cluster->new('hostile');
$node->init;
$node->append_conf('postgresql.conf', "batchguard.backup_storage = 'file'\n");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION pg_batchguard;
CREATE TABLE doc (id bigint PRIMARY KEY, body text);
INSERT INTO doc SELECT g, repeat('body ', 50) || g FROM generate_series(1, 2000) g;
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
sub error_of {
    my ($sql) = @_;
    my ($ret, $out, $err) = $node->psql('postgres', $sql);
    $err =~ s/\n.*//s;
    return $ret == 0 ? 'ok' : $err;
}
sub export { return $node->safe_psql('postgres',
    "SELECT backup_id FROM batchguard.export_backup('doc', '$_[0]', label => '$_[1]')"); }
sub alive { is($node->safe_psql('postgres', 'SELECT 1'), '1', "the server is up after: $_[0]"); }

# 1. A deleted file: status missing, the missing-file error everywhere, delete_backup works.
my $gone = export('{1,2}', 'gone');
unlink(file_of($gone)) or die "unlink: $!";
is($node->safe_psql('postgres', "SELECT (batchguard.get_backup('$gone')).status"), 'missing',
    'a deleted file shows status missing');
like(error_of("SELECT batchguard.read_backup('$gone')"), qr/the file of backup $gone is missing/,
    'read_backup: the missing-file error');
like(error_of("SELECT batchguard.read_backup('$gone', 0, 10)"), qr/is missing/, 'a chunk too');
like(error_of("SELECT count(*) FROM batchguard.backup_rows('$gone')"), qr/is missing/,
    'backup_rows too');
is($node->safe_psql('postgres', "SELECT batchguard.delete_backup('$gone')"), 't',
    'delete_backup removes the row of a missing file');

# 2. A file replaced by a symlink to another backup's file (a same-size, valid file) and
# by a symlink to a file outside the directory: never read through the link.
my $victim = export('{3}', 'victim');
my $other = export('{4}', 'other');
my $vfile = file_of($victim);
unlink($vfile) or die;
symlink(file_of($other), $vfile) or die "symlink: $!";
my $err = error_of("SELECT batchguard.read_backup('$victim')");
like($err, qr/Too many levels of symbolic links/, 'a symlink to another backup is not read as this backup');
like(error_of("SELECT batchguard.read_backup('$victim', 0, 5)"), qr/the file of backup $victim cannot be read: Too many levels of symbolic links/,
    'not even a chunk of it');
like(error_of("SELECT count(*) FROM batchguard.backup_rows('$victim')"),
    qr/Too many levels of symbolic links/, 'nor its rows');
unlink($vfile);
symlink($node->data_dir . '/postgresql.conf', $vfile) or die;
like(error_of("SELECT batchguard.read_backup('$victim', 0, 100)"), qr/Too many levels of symbolic links/,
    'a symlink to postgresql.conf is not read');
like(error_of("SELECT count(*) FROM batchguard.backup_rows('$victim')"), qr/Too many levels of symbolic links/,
    'nor parsed');
alive('symlinks');

# 3. A file replaced by a directory.
unlink($vfile);
make_path($vfile);
like(error_of("SELECT batchguard.read_backup('$victim')"), qr/is not a regular file/,
    'a directory in place of the file is a clear error');
like(error_of("SELECT batchguard.read_backup('$victim', 0, 10)"), qr/is not a regular file/,
    'for a chunk too');
like(error_of("SELECT count(*) FROM batchguard.backup_rows('$victim')"), qr/is not a regular file/,
    'and for backup_rows');
is(error_of("SELECT batchguard.delete_backup('$victim')"), 'ok', 'delete_backup still removes the row');
ok(-d $vfile, 'and leaves the directory it did not create alone');
remove_tree($vfile);
alive('a directory');

# 3b. A FIFO in place of the file: opened without waiting for a writer (a plain open() of a
# FIFO waits for one, and no cancel reaches a backend waiting there), then refused like
# any file that is not a regular one. Bounded: before the fix the statement never ended.
my $fifo_victim = export('{5,6}', 'fifo');
my $ffile = file_of($fifo_victim);
unlink($ffile) or die "unlink: $!";
POSIX::mkfifo($ffile, 0600) or die "mkfifo: $!";
for my $sql ("SELECT batchguard.read_backup('$fifo_victim')",
             "SELECT count(*) FROM batchguard.backup_rows('$fifo_victim')") {
    my ($out, $err, $timed_out) = ('', '', 0);
    $node->psql('postgres', $sql, stdout => \$out, stderr => \$err,
        timeout => $PostgreSQL::Test::Utils::timeout_default, timed_out => \$timed_out);
    ok(!$timed_out && $err =~ /is not a regular file/, "a FIFO in place of the file: $sql")
        or diag("timed out: $timed_out; stderr: $err");
}
unlink($ffile);
alive('a FIFO');

# 4. The database's backup directory deleted: old rows are missing, new exports recreate it.
my $before = export('{5}', 'before');
remove_tree($dir);
is($node->safe_psql('postgres', "SELECT (batchguard.get_backup('$before')).status"), 'missing',
    'with the directory gone an old backup is missing');
my $after = export('{6}', 'after');
ok(-f file_of($after), 'a new export recreates the directory');
is($node->safe_psql('postgres', "SELECT length(batchguard.read_backup('$after')) > 0"), 't',
    'and reads back');

# 4b. A file larger than a bytea can hold (a sparse file of 1.1 GB in place of a backup's
# file): reading it whole is a clear error (54000) before anything is read; a chunk still works.
my $huge = export('{7}', 'huge');
truncate(file_of($huge), 1100 * 1024 * 1024) or die "truncate: $!";
my ($ret, $out_huge, $err_huge) = $node->psql('postgres',
    "SELECT length(batchguard.read_backup('$huge'));\n\\echo :SQLSTATE", on_error_stop => 0);
like($err_huge, qr/backup chunk too large for a bytea/, 'reading 1.1 GB whole: a clear error');
like($out_huge, qr/^54000$/m, 'with SQLSTATE 54000');
is($node->safe_psql('postgres', "SELECT length(batchguard.read_backup('$huge', 1000000000, 16))"), '16',
    'a chunk of it reads');
is($node->safe_psql('postgres', "SELECT batchguard.delete_backup('$huge')"), 't', 'and it can be deleted');
alive('a huge file');

# 5. The storage limits: the total and the per-owner quota stop an export with a clear
# error, before and during writing, and leave no file and no row.
sub files { opendir(my $d, $dir) or return (); return grep { /\.jsonl\.zst$/ } readdir($d); }
my $count = scalar(files());
like(error_of("SET batchguard.max_backup_bytes = '1kB'; SELECT batchguard.export_backup('doc', label => 'too big')"),
    qr/backup storage limit exceeded/, 'the total storage limit stops a large export');
like(error_of("SET batchguard.max_backup_bytes_per_owner = '1kB'; SELECT batchguard.export_backup('doc', label => 'too big')"),
    qr/backup quota of the owner exceeded/, 'the per-owner quota too');
is(scalar(files()), $count, 'neither left a file');
is($node->safe_psql('postgres', "SELECT count(*) FROM batchguard.backups WHERE label = 'too big'"), '0',
    'nor a row');

# 6. A full file system (only when a small one is provided).
SKIP: {
    my $small = $ENV{BATCHGUARD_SMALL_FS};
    skip 'BATCHGUARD_SMALL_FS is not set (a small tmpfs writable by postgres)', 5
      unless $small && -d $small && -w $small;
    my $bdir = "$small/backups-$$";    # a fresh directory on every run
    $node->append_conf('postgresql.conf', "batchguard.backup_directory = '$bdir'\n");
    $node->reload;
    $node->poll_query_until('postgres',
        "SELECT current_setting('batchguard.backup_directory') = '$bdir'");
    $node->safe_psql('postgres', q{
        CREATE TABLE noise (id bigint PRIMARY KEY, body text);
        INSERT INTO noise SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text)
          FROM generate_series(1, 50000) g});
    my $small_ok = export('{7}', 'small');
    like(error_of("SELECT batchguard.export_backup('noise', label => 'full')"),
        qr/No space left on device|could not (write|extend|fsync)/, 'a full file system is a clear error');
    my @left = grep { /\.jsonl\.zst$/ } do { opendir(my $d, "$bdir/$dboid") or die; readdir($d) };
    is(scalar(@left), 1, 'the failed export removed its partial file');
    is($node->safe_psql('postgres', "SELECT count(*) FROM batchguard.backups WHERE label = 'full'"), '0',
        'and left no row');
    is($node->safe_psql('postgres', "SELECT length(batchguard.read_backup('$small_ok')) > 0"), 't',
        'the backup already there still reads back');
    alive('a full file system');
    $node->append_conf('postgresql.conf', "batchguard.backup_directory = 'pg_batchguard'\n");
    $node->reload;
    $node->poll_query_until('postgres', "SELECT current_setting('batchguard.backup_directory') = 'pg_batchguard'");
    remove_tree($bdir);
}

# 7. Raw bytes from the client that are not valid in its encoding never reach the
# functions; valid bytes in another client encoding are converted, not mangled.
like(error_of("SELECT batchguard.complete_item('raw', 'a\xff\xfeb')"),
    qr/invalid byte sequence for encoding "UTF8": 0xff/, 'invalid UTF-8 bytes in an item id are refused');
like(error_of("SELECT batchguard.start_batch('raw\xc3', ARRAY['a'])"),
    qr/invalid byte sequence for encoding "UTF8"/, 'a truncated UTF-8 sequence in a job id too');
like(error_of("SET client_encoding = 'SJIS'; SELECT batchguard.complete_item('raw', '\x81\x27) OR true --')"),
    qr/invalid byte sequence for encoding "SJIS": 0x81 0x27/,
    'an SJIS lead byte swallowing a quote is refused, not turned into SQL');
is($node->safe_psql('postgres', "SET client_encoding = 'LATIN1'; SELECT batchguard.complete_item('raw', 'caf\xe9')"),
    't', 'a valid LATIN1 id is accepted');
is($node->safe_psql('postgres', "SELECT batchguard.is_item_completed('raw', 'caf\xc3\xa9')"), 't',
    'and stored as the same characters (UTF-8)');
is($node->safe_psql('postgres', "SELECT count(*) FROM batchguard.batch_items WHERE item_id LIKE '%OR true%'"),
    '0', 'nothing of the refused inputs was stored');
alive('raw bytes');

# 8. cleanup_checkpoint races workers that complete items (lazy mode) and claim and complete
# leased items: each worker commits every item; errors may only be the documented ones,
# and no item is ever left without its batch.
$node->safe_psql('postgres', q{
CREATE TABLE race_errors (who text, sqlstate text, message text);
GRANT ALL ON race_errors TO PUBLIC;
SELECT batchguard.start_batch('leased', ARRAY['a', 'b', 'c', 'd']);
});
my @workers;
for my $w (1 .. 3) {
    push @workers, IPC::Run::start(['psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', qq{
DO \$\$
DECLARE t record;
BEGIN
    FOR i IN 1..300 LOOP
        BEGIN
            PERFORM batchguard.complete_item('lazy', 'w$w-' || i);
            PERFORM batchguard.start_batch('leased', ARRAY['a', 'b', 'c', 'd']) WHERE i % 50 = 0
               AND batchguard.calculate_progress('leased') IS NULL;
            FOR t IN SELECT * FROM batchguard.claim_items('leased', 2, '1 minute') LOOP
                PERFORM batchguard.complete_item('leased', t.item_id, lease_token => t.lease_token);
            END LOOP;
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO race_errors VALUES ('worker', SQLSTATE, SQLERRM);
        END;
        COMMIT;
    END LOOP;
END
\$\$}], '>', \my $o, '2>', \my $e);
}
my $cleaner = IPC::Run::start(['psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', q{
DO $$
BEGIN
    FOR i IN 1..200 LOOP
        BEGIN
            PERFORM batchguard.cleanup_checkpoint('lazy');
            PERFORM batchguard.cleanup_checkpoint('leased') WHERE i % 3 = 0;
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO race_errors VALUES ('cleaner', SQLSTATE, SQLERRM);
        END;
        COMMIT;
        PERFORM pg_sleep(0.005);
    END LOOP;
END
$$}], '>', \my $co, '2>', \my $ce);
$_->finish for @workers, $cleaner;
is(($_->full_results)[0], 0, 'a racing session ran to the end') for @workers, $cleaner;
my $errors = $node->safe_psql('postgres',
    "SELECT string_agg(DISTINCT who || ' ' || sqlstate || ' ' || regexp_replace(message, '\"[^\"]*\"', 'X', 'g'), '; ') FROM race_errors");
diag("errors seen in the race: " . ($errors || 'none'));
is($node->safe_psql('postgres',
    "SELECT count(*) FROM race_errors WHERE who = 'cleaner' OR sqlstate NOT IN ('42704', '42710', 'PB001', '22023')"),
    '0', 'only the documented errors: batch does not exist or already exists, lease no longer current, item not registered');
is($node->safe_psql('postgres', q{
    SELECT count(*) FROM batchguard.batch_items i
     WHERE NOT EXISTS (SELECT FROM batchguard.batches b WHERE b.batch_id = i.batch_id)}),
    '0', 'no item without its batch');
alive('the race');

# 9. Without preloading, a session that loads the library while batchguard.database_names
# is set logs that no worker maintains those databases.
my $log_offset = -s $node->logfile;
$node->append_conf('postgresql.conf', "batchguard.database_names = 'postgres'");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('batchguard.database_names', true) = 'postgres'");
$node->safe_psql('postgres', 'SELECT batchguard.current_owner()');
$node->wait_for_log(qr/pg_batchguard is not preloaded: no maintenance workers run for batchguard\.database_names/,
    $log_offset);
pass('without preloading, the listed databases get a warning that no worker runs');

done_testing();
