# What the maintenance workers do with backups: expired backups go (row and file) at the
# next rounds, unexpired and held ones stay; two databases share the backup directory
# and never touch each other's files; a running export's file is never swept; the orphan
# of an export killed by a crash is moved to quarantine; a file deleted by hand marks its row
# missing; an unreadable folder marks its backups unreadable and the rounds recover;
# DROP EXTENSION keeps the files (reported once); DROP DATABASE: the launcher moves the
# database's folder to quarantine, later deletes its backup files and leaves alone
# (reporting it once) a folder that holds files that are not backups.
#
# The test waits for conditions, never for a fixed time: "N rounds have run" is read from
# pg_stat_activity, where a worker shows the round it runs ("pg_batchguard maintenance
# round N"); each wait is bounded by the suite's timeout (PG_TEST_TIMEOUT_DEFAULT: under
# Valgrind, scripts/valgrind-server, a round takes many times longer).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $interval = 2;
my $node = PostgreSQL::Test::Cluster->new('maint');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_batchguard'
batchguard.database_names = 'postgres, db2'
batchguard.cleanup_interval = $interval
batchguard.backup_storage = 'file'
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE db2');
$node->safe_psql('postgres', 'CREATE DATABASE db3');
for my $db ('postgres', 'db2', 'db3') {
    $node->safe_psql($db, 'CREATE EXTENSION pg_batchguard');
    $node->safe_psql($db, "CREATE TABLE t (id int PRIMARY KEY, v text);
        INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 100) g");
}

sub folder_of {
    my ($db) = @_;
    my $oid = $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = '$db'");
    return $node->data_dir . "/pg_batchguard/$oid";
}
# Exports rows of t; returns (backup id, file path).
sub export {
    my ($db, $label) = @_;
    my $row = $node->safe_psql($db,
        "SELECT backup_id || '-' || creating_xid FROM batchguard.export_backup('t', label => '$label')");
    my ($id) = $row =~ /^(.{36})/;
    return ($id, folder_of($db) . "/$row.jsonl.zst");
}
sub row_count {
    my ($db, $id) = @_;
    return $node->safe_psql($db, "SELECT count(*) FROM batchguard.backups WHERE backup_id = '$id'");
}
sub worker_pid {
    my ($db) = @_;
    return $node->safe_psql('postgres',
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_batchguard worker' AND datname = '$db'");
}
# The number of the round the database's worker runs or ran last (0 before its first).
sub round_of {
    my ($db) = @_;
    return $node->safe_psql('postgres',
        "SELECT coalesce(max(substring(query from 'round (\\d+)')::int), 0) FROM pg_stat_activity"
        . " WHERE backend_type = 'pg_batchguard worker' AND datname = '$db'");
}
# Waits until the database's worker has run $n more rounds, each started after this call.
sub wait_for_rounds {
    my ($db, $n) = @_;
    my $until = round_of($db) + $n;
    return $node->poll_query_until('postgres',
        "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_batchguard worker'"
        . " AND datname = '$db' AND (substring(query from 'round (\\d+)')::int > $until"
        . "      OR (substring(query from 'round (\\d+)')::int = $until AND state = 'idle'))");
}
ok($node->poll_query_until('postgres',
    "SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'pg_batchguard worker'"),
    'two workers run');

# --- Expiry: an expired backup goes at the next rounds; unexpired and held ones stay.
my ($expired, $expired_file) = export('postgres', 'expired');
my ($kept, $kept_file) = export('postgres', 'kept');
my ($held, $held_file) = export('postgres', 'held');
my ($other, $other_file) = export('db2', 'other db');
$node->safe_psql('postgres', "SELECT batchguard.hold_backup('$held')");
ok(-f $expired_file && -f $held_file && -f $other_file, 'the files exist');
my $start = time;
$node->safe_psql('postgres', "UPDATE batchguard.backups SET expires_at = now() - interval '1 second'
    WHERE backup_id IN ('$expired', '$held')");
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM batchguard.backups WHERE backup_id = '$expired'"),
    'the expired backup is removed by a round');
note(sprintf('expired backup removed after %.1f s (interval %d s)', time - $start, $interval));
ok(wait_for_rounds('postgres', 1), 'one more round ran');
ok(!-e $expired_file, 'its file is gone too');
is(row_count('postgres', $kept) . row_count('postgres', $held), '11', 'unexpired and held rows stay');
ok(-f $kept_file && -f $held_file, 'their files stay');
ok(-f $other_file, "the other database's file stays");
is($node->safe_psql('postgres', "SELECT action, actor FROM batchguard.audit WHERE backup_id = '$expired' AND action = 'expire'"),
    'expire|postgres', 'the expiry is audited');

# --- Two databases share the backup directory: each sweeps only its own folder. An orphan
# (a file named like a backup, of a transaction long ended, with no row) in db2's folder is
# never touched by the postgres worker, whose own orphan goes; db2's worker removes it once
# db2 is maintained again.
my $db2_folder = folder_of('db2');
my $pg_folder = folder_of('postgres');
$node->append_conf('postgresql.conf', "batchguard.database_names = 'postgres'");
$node->reload;
ok($node->poll_query_until('postgres',
    "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pg_batchguard worker' AND datname = 'db2'"),
    "db2 is no longer maintained");
my $ended_xid = $node->safe_psql('postgres', 'SELECT pg_current_xact_id()');    # committed at once
my $db2_orphan = "$db2_folder/7c0b5a2e-1111-4222-8333-944455556666-$ended_xid.jsonl.zst";
my $pg_orphan = "$pg_folder/7c0b5a2e-2222-4222-8333-944455556666-$ended_xid.jsonl.zst";
for my $f ($db2_orphan, $pg_orphan) {
    open(my $fh, '>', $f) or die "$f: $!";
    print $fh 'not a backup';
    close $fh;
}
$node->safe_psql('postgres', 'SELECT pg_current_xact_id()');    # a later transaction has ended
ok($node->poll_query_until('postgres', "SELECT (pg_stat_file('$pg_orphan', true)).size IS NULL"),
    "the postgres worker sweeps the orphan in its own folder");
ok(wait_for_rounds('postgres', 2), 'and runs two more rounds');
ok(-f $db2_orphan, "db2's orphan survives rounds of the postgres worker");
ok(-f $other_file, "and so does db2's backup file");
$node->append_conf('postgresql.conf', "batchguard.database_names = 'postgres, db2'");
$node->reload;
ok($node->poll_query_until('postgres', "SELECT (pg_stat_file('$db2_orphan', true)).size IS NULL"),
    "db2's worker sweeps its own orphan");
ok(-f $other_file && -f $kept_file, "and neither database's backup file");

# --- A running export's file is never swept: the export stays open in a transaction.
my $open = $node->background_psql('postgres');
$open->query_safe('BEGIN');
my $running = $open->query_safe(
    "SELECT backup_id || '-' || creating_xid FROM batchguard.export_backup('t', label => 'running')");
my $running_file = "$pg_folder/$running.jsonl.zst";
ok(-f $running_file, 'the open export has written its file');
ok(wait_for_rounds('postgres', 2), 'two rounds ran');
ok(-f $running_file, 'rounds leave the file of a running export alone');
$open->query_safe('COMMIT');
$open->quit;
my ($running_id) = $running =~ /^(.{36})/;
is(row_count('postgres', $running_id), '1', 'committed: row and file');
ok(wait_for_rounds('postgres', 1), 'a round ran');
ok(-f $running_file, 'and the committed file stays');

# --- A crash during an export leaves an orphan file; the worker sweeps it.
my $crashing = $node->background_psql('postgres');
my $pid = $crashing->query_safe('SELECT pg_backend_pid()');
$crashing->query_safe('BEGIN');
my $orphan = $crashing->query_safe(
    "SELECT backup_id || '-' || creating_xid FROM batchguard.export_backup('t', label => 'crash')");
my $orphan_file = "$pg_folder/$orphan.jsonl.zst";
ok(-f $orphan_file, 'the export in the crashing session wrote its file');
my $log_offset = -s $node->logfile;
kill 'KILL', $pid;
$node->wait_for_log(qr/database system is ready to accept connections/, $log_offset);
eval { $crashing->quit };
# The crash may have lost the export's transaction id before it reached the WAL: then the
# next transaction gets the same id again. Until some transaction ends after that id, the
# file's transaction cannot be told apart from a running one, and it is kept.
$node->safe_psql('postgres', 'SELECT pg_current_xact_id()') for 1 .. 2;
ok($node->poll_query_until('postgres', "SELECT (pg_stat_file('$orphan_file', true)).size IS NULL"),
    'the orphan of the crashed export is swept');
# (the file is moved before the line is written)
$node->wait_for_log(qr/moved orphan backup file "[^"]*\Q$orphan\E[^"]*" to quarantine/, $log_offset);
pass('the sweep is logged');
ok(-f "$pg_folder/quarantine/$orphan.jsonl.zst", 'the orphan waits in the quarantine');
ok(-f $kept_file && -f $held_file && -f $running_file && -f $other_file, 'no other file was swept');

# --- A file deleted by hand: its row is reported missing, the worker keeps running.
ok($node->poll_query_until('postgres',
    "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_batchguard worker' AND datname = 'postgres'"),
    'the worker is back after the crash');
my $worker = worker_pid('postgres');
my ($gone, $gone_file) = export('postgres', 'deleted by hand');
$log_offset = -s $node->logfile;
unlink $gone_file or die "unlink: $!";
ok($node->poll_query_until('postgres',
    "SELECT status = 'missing' FROM batchguard.backups WHERE backup_id = '$gone'"),
    'a row whose file was deleted by hand is marked missing');
like(slurp_file($node->logfile, $log_offset), qr/WARNING:  pg_batchguard: the file of backup \Q$gone\E \(owner postgres\) is missing/,
    'and reported in the log');
ok(wait_for_rounds('postgres', 2), 'two more rounds ran');
my @reports = (slurp_file($node->logfile, $log_offset) =~ /the file of backup \Q$gone\E/g);
is(scalar(@reports), 1, 'reported once');
is(worker_pid('postgres'), $worker, 'the worker did not crash');

# --- An unreadable backup folder: its backups are unreadable (never missing), the rounds
# go on, and everything is ok again once it can be read.
$log_offset = -s $node->logfile;
chmod 0, $pg_folder or die "chmod: $!";
ok($node->poll_query_until('postgres', "SELECT status = 'unreadable' FROM batchguard.backups WHERE backup_id = '$kept'"),
    'while the folder is unreadable its backups are marked unreadable');
like(slurp_file($node->logfile, $log_offset), qr/WARNING:  pg_batchguard: the file of backup \Q$kept\E \(owner postgres\) cannot be read/,
    'and reported');
is($node->safe_psql('postgres', "SELECT count(*) FROM batchguard.backups WHERE status = 'missing' AND backup_id <> '$gone'"),
    '0', 'no row was taken for missing while the folder was unreadable');
chmod 0700, $pg_folder or die "chmod: $!";
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM batchguard.backups WHERE status = 'unreadable'"),
    'once it can be read they are ok again');
is($node->safe_psql('postgres', "SELECT status FROM batchguard.backups WHERE backup_id = '$gone'"), 'missing',
    'and the one deleted by hand is missing again (it could not be told from unreadable meanwhile)');
my ($later, $later_file) = export('postgres', 'later');
$node->safe_psql('postgres', "UPDATE batchguard.backups SET expires_at = now() - interval '1 second' WHERE backup_id = '$later'");
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM batchguard.backups WHERE backup_id = '$later'"),
    'rounds work again once the directory is readable');
ok(!-e $later_file, 'with the file');

# --- A file that cannot be unlinked after its row's deletion commits: the row is gone,
# the file stays as an orphan, and a later round removes it once it can.
my ($stuck, $stuck_file) = export('postgres', 'stuck');
chmod 0500, $pg_folder or die "chmod: $!";
$log_offset = -s $node->logfile;
$node->safe_psql('postgres', "UPDATE batchguard.backups SET expires_at = now() - interval '1 second' WHERE backup_id = '$stuck'");
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM batchguard.backups WHERE backup_id = '$stuck'"),
    'the expired row is deleted even though its file cannot be unlinked');
ok(-f $stuck_file, 'the file stays while the folder is read-only');
$node->wait_for_log(qr/could not remove backup file "[^"]*\Q$stuck\E[^"]*": Permission denied/, $log_offset);
$node->wait_for_log(qr/could not move orphan backup file "[^"]*\Q$stuck\E[^"]*" to quarantine: Permission denied/, $log_offset);
pass('both failures are logged: the unlink at commit, then the retry by the sweep');
chmod 0700, $pg_folder or die "chmod: $!";
ok($node->poll_query_until('postgres', "SELECT (pg_stat_file('$stuck_file', true)).size IS NULL"),
    'the sweep moves it to quarantine once the folder is writable again');

# --- DROP EXTENSION: the files stay, never swept, reported once.
$log_offset = -s $node->logfile;
$node->safe_psql('db2', 'DROP EXTENSION pg_batchguard');
my $kept_report = qr/database "db2" has \d+ files in "[^"]*" but no pg_batchguard extension/;
$node->wait_for_log($kept_report, $log_offset);
ok(wait_for_rounds('db2', 3), 'three more rounds of db2 ran without the extension');
ok(-f $other_file, 'after DROP EXTENSION the files are kept');
my $log = slurp_file($node->logfile, $log_offset);
my @kept_reports = ($log =~ /$kept_report/g);
is(scalar(@kept_reports), 1, 'and reported once in the log');
$node->safe_psql('db2', 'CREATE EXTENSION pg_batchguard');
$node->wait_for_log(qr/backup files in "[^"]*" predate this installation/, $log_offset);
pass('a new CREATE EXTENSION reports the files of the earlier installation');
ok(wait_for_rounds('db2', 2), 'two more rounds of db2 ran with the new installation');
ok(-f $other_file, 'and none swept them');

# --- DROP DATABASE: the launcher moves the folder of a database that no longer exists to
# quarantine.
my ($db3_backup, $db3_file) = export('db3', 'dropped');
my $db3_folder = folder_of('db3');
ok(-f $db3_file, 'db3 has a backup file');
$node->safe_psql('postgres', 'DROP DATABASE db3');
ok($node->poll_query_until('postgres', "SELECT (pg_stat_file('$db3_folder', true)).size IS NULL"),
    'the folder of a dropped database is moved away');
ok(scalar(glob("$db3_folder.dropped-*")), 'into quarantine');
ok(-d $pg_folder && -d $db2_folder, 'the folders of existing databases stay');

# A quarantined folder of a dropped database that holds a file that is not a backup: once
# the quarantine period has passed its backup files go, the folder and that file stay,
# reported once. (db5, dropped later, shows that the launcher looked at the quarantined
# folders again after the report.) The period is 0 from here on.
$node->append_conf('postgresql.conf', 'batchguard.quarantine_period = 0');
$node->reload;
$node->safe_psql('postgres', 'CREATE DATABASE db4');
$node->safe_psql('postgres', 'CREATE DATABASE db5');
for my $db ('db4', 'db5') {
    $node->safe_psql($db, "CREATE EXTENSION pg_batchguard; CREATE TABLE t (id int PRIMARY KEY);
                           INSERT INTO t VALUES (1)");
}
my ($db4_backup, $db4_file) = export('db4', 'in a folder with notes');
my $db4_folder = folder_of('db4');
my $db4_name = $db4_file =~ s{^.*/}{}r;
my $db5_folder = (export('db5', 'dropped later'))[1] =~ s{/[^/]*$}{}r;
open(my $notes, '>', "$db4_folder/notes.txt") or die "notes: $!";
print $notes "an operator's notes\n";
close $notes;
$log_offset = -s $node->logfile;
$node->safe_psql('postgres', 'DROP DATABASE db4');
# (the log names folders as batchguard.backup_directory does: relative to the data directory)
my ($db4_oid, $db5_oid) = map { s{^.*/}{}r } $db4_folder, $db5_folder;
$node->wait_for_log(qr/quarantined folder "[^"]*\/\Q$db4_oid\E\.dropped-\d+" still holds files that are not backups; it is left alone/,
    $log_offset);
my ($db4_quarantined) = glob("$db4_folder.dropped-*");
ok(defined $db4_quarantined && !-e "$db4_quarantined/$db4_name", "the dropped database's backup file is removed");
ok(defined $db4_quarantined && -f "$db4_quarantined/notes.txt", 'the file that is not a backup stays, with its folder');
$node->safe_psql('postgres', 'DROP DATABASE db5');
$node->wait_for_log(qr/deleted quarantined folder "[^"]*\/\Q$db5_oid\E\.dropped-\d+" of a dropped database/, $log_offset);
ok(!-e $db5_folder && !(() = glob("$db5_folder.dropped-*")), 'a database dropped later has its folder removed');
my @foreign_reports = (slurp_file($node->logfile, $log_offset) =~ /holds files that are not backups/g);
is(scalar(@foreign_reports), 1, 'the folder with the foreign file was reported once');

$node->stop;
# (after the stop: the launcher has written all it had to say)
unlike(slurp_file($node->logfile, $log_offset), qr/could not open file "[^"]*\.dropped-/,
    'no folder is synced after it was deleted');
done_testing();
