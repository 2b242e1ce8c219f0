# delete_with_backup and purge_with_backup against failures: an unwritable backup
# directory deletes nothing; an immediate shutdown during delete_with_backup leaves either
# nothing changed (in flight) or everything deleted with an intact, restorable backup
# (committed); a crash in the middle of a purge resumes to completion with a backup for
# every deleted row, none deleted twice or left behind.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use File::Path qw(make_path);

my $node = PostgreSQL::Test::Cluster->new('delete');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_batchguard'\nbatchguard.backup_storage = 'file'\n");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION pg_batchguard;
CREATE TABLE conv (id bigint PRIMARY KEY, title text);
CREATE TABLE turn (id bigint PRIMARY KEY, conv_id bigint REFERENCES conv ON DELETE CASCADE, body text);
INSERT INTO conv SELECT g, 'conv ' || g FROM generate_series(1, 1000) g;
INSERT INTO turn SELECT g, g % 1000 + 1, 'turn ' || g FROM generate_series(1, 5000) g;
CREATE TABLE snapshot AS SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) AS turns,
                                (SELECT md5(string_agg(c::text, ',' ORDER BY c.id)) FROM conv c) AS convs
                           FROM turn t;
});
my $all_there = q{SELECT (SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) FROM turn t) = s.turns
                     AND (SELECT md5(string_agg(c::text, ',' ORDER BY c.id)) FROM conv c) = s.convs
                    FROM snapshot s};
sub error_of {
    my ($sql) = @_;
    my ($ret, $out, $err) = $node->psql('postgres', $sql);
    $err =~ s/\n.*//s;
    return $ret == 0 ? 'ok' : $err;
}

# 1. An unwritable backup directory: the delete fails and every row is still there.
my $ro = PostgreSQL::Test::Utils::tempdir() . '/readonly';
make_path($ro);
chmod 0555, $ro;
$node->append_conf('postgresql.conf', "batchguard.backup_directory = '$ro/backups'\n");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('batchguard.backup_directory') LIKE '%readonly%'");
like(error_of("SELECT batchguard.delete_with_backup('conv', '{1,2,3}')"),
    qr/could not create backup directory .*Permission denied/, 'unwritable directory: a clear error');
is($node->safe_psql('postgres', $all_there), 't', 'and every row is still there');
is($node->safe_psql('postgres', 'SELECT count(*) FROM batchguard.backups'), '0', 'and no backup row');
$node->append_conf('postgresql.conf', "batchguard.backup_directory = 'pg_batchguard'\n");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('batchguard.backup_directory') = 'pg_batchguard'");

# 2. A crash while delete_with_backup runs (held by a lock on the child table): after the
# restart nothing has changed.
my ($in, $out, $err) = ('', '', '');
my $locker = IPC::Run::start(['psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres')],
    '<', \$in, '>', \$out, '2>', \$err);
$in .= "BEGIN; LOCK TABLE turn IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n";
$locker->pump until $out =~ /locked/;
my ($dout, $derr) = ('', '');
my $deleter = IPC::Run::start(['psql', '-XAtq', '-d', $node->connstr('postgres'), '-c',
    "SELECT batchguard.delete_with_backup('conv', '{1,2,3}', label => 'in flight')"], '>', \$dout, '2>', \$derr);
ok($node->poll_query_until('postgres',
    "SELECT count(*) > 0 FROM pg_locks WHERE relation = 'turn'::regclass AND NOT granted"),
    'delete_with_backup waits for the child table');
$node->stop('immediate');
$locker->kill_kill;
$deleter->kill_kill;
$node->start;
is($node->safe_psql('postgres', $all_there), 't', 'crash in flight: every row is still there');
is($node->safe_psql('postgres', 'SELECT count(*) FROM batchguard.backups'), '0', 'and no backup row');

# 3. A crash just after the commit: everything deleted, the backup intact and restorable.
my $backup = $node->safe_psql('postgres',
    "SELECT r -> 'backup' ->> 'backup_id' FROM batchguard.delete_with_backup('conv', '{1,2,3}', label => 'committed') r");
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', 'SELECT count(*) FROM conv WHERE id IN (1, 2, 3)'), '0',
    'crash after commit: the rows are gone');
is($node->safe_psql('postgres',
    "SELECT length(batchguard.read_backup('$backup')) = compressed_bytes FROM batchguard.backups WHERE backup_id = '$backup'"),
    't', 'the backup reads back whole (SHA-256 verified)');
is($node->safe_psql('postgres', "SELECT batchguard.restore_backup('$backup') -> 'inserted'"), '18',
    'it restores (3 conversations, 15 turns)');
is($node->safe_psql('postgres', $all_there), 't', 'every row is back as it was');

# 4. A crash in the middle of a purge: chunk 4 of 10 waits for a row lock when the server
# stops; a second CALL completes the purge.
($in, $out, $err) = ('', '', '');
$locker = IPC::Run::start(['psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres')],
    '<', \$in, '>', \$out, '2>', \$err);
$in .= "BEGIN; SELECT id FROM conv WHERE id = 350 FOR SHARE; SELECT 'locked';\n";
$locker->pump until $out =~ /locked/;
my ($pout, $perr) = ('', '');
my $purger = IPC::Run::start(['psql', '-XAtq', '-d', $node->connstr('postgres'), '-c',
    "CALL batchguard.purge_with_backup('purge', 'conv', chunk_size => 100, all_rows => true)"],
    '>', \$pout, '2>', \$perr);
ok($node->poll_query_until('postgres',
    "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%purge_with_backup%'"),
    'the purge waits in a chunk');
$node->stop('immediate');
$locker->kill_kill;
$purger->kill_kill;
$node->start;
is($node->safe_psql('postgres', q{SELECT completed || '/' || total_items FROM batchguard.batch_summary WHERE job_id = 'purge'}),
    '3/10', 'after the crash: three chunks done');
is($node->safe_psql('postgres', 'SELECT min(id) FROM conv'), '301', 'and exactly their rows deleted');
$node->safe_psql('postgres',
    "CALL batchguard.purge_with_backup('purge', 'conv', chunk_size => 100, all_rows => true)");
is($node->safe_psql('postgres', q{SELECT status || ' ' || completed FROM batchguard.batch_summary WHERE job_id = 'purge'}),
    'completed 10', 'the second CALL completes the purge');
is($node->safe_psql('postgres', 'SELECT (SELECT count(*) FROM conv) + (SELECT count(*) FROM turn)'), '0',
    'nothing left behind');
is($node->safe_psql('postgres', q{
    SELECT count(*) || ' ' || sum(total_rows) FROM batchguard.backups WHERE label LIKE 'purge purge %'}),
    '10 6000', 'one backup per chunk, every deleted row backed up once');
$node->safe_psql('postgres', q{
    SELECT batchguard.restore_backup(backup_id) FROM batchguard.backups WHERE label LIKE 'purge purge %'});
$node->safe_psql('postgres', "SELECT batchguard.restore_backup('$backup', 'skip')");
is($node->safe_psql('postgres', $all_there), 't', 'the chunk backups restore every row as it was');

# 5. A backup whose file is gone (a replica, a restored dump): restore_backup says so and
# restores nothing.
my $gone = $node->safe_psql('postgres',
    "SELECT r -> 'backup' ->> 'backup_id' FROM batchguard.delete_with_backup('conv', '{10}') r");
my $dboid = $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = current_database()");
my $xid = $node->safe_psql('postgres', "SELECT creating_xid FROM batchguard.backups WHERE backup_id = '$gone'");
unlink($node->data_dir . "/pg_batchguard/$dboid/$gone-$xid.jsonl.zst") or die "unlink: $!";
like(error_of("SELECT batchguard.restore_backup('$gone')"), qr/the file of backup .* is missing/,
    'a missing file: a clear error');
is($node->safe_psql('postgres', 'SELECT count(*) FROM conv WHERE id = 10'), '0', 'and nothing restored');

# 6. Every audit event (export, download, delete, extend, hold, release, delete with backup,
# restore) is also written to the server log, with its backup, owner and actor; and the log
# keeps the event of a transaction that rolled back, whose audit row went with it.
my $kept = $node->safe_psql('postgres',
    "SELECT r -> 'backup' ->> 'backup_id' FROM batchguard.delete_with_backup('conv', '{11}') r");
$node->safe_psql('postgres', "SELECT length(batchguard.read_backup('$kept', 0, 10))");
$node->safe_psql('postgres', "SELECT batchguard.extend_backup('$kept', now() + interval '8 days')");
$node->safe_psql('postgres', "SELECT batchguard.hold_backup('$kept'), batchguard.hold_backup('$kept', false)");
my $rolled_back = $node->safe_psql('postgres',
    "SELECT backup_id FROM batchguard.export_backup('conv', '{12}', label => 'deleted then rolled back')");
$node->safe_psql('postgres', "BEGIN; SELECT batchguard.delete_backup('$rolled_back'); ROLLBACK;");
my $log = slurp_file($node->logfile);
my @events = split /\n/, $node->safe_psql('postgres',
    "SELECT action || '|' || backup_id || '|' || owner || '|' || actor FROM batchguard.audit ORDER BY audit_id");
my @actions = sort keys %{ { map { (split /\|/)[0] => 1 } @events } };
note('audit actions: ' . join(', ', @actions));
is(join(',', @actions), 'delete_with_backup,download,export,extend,hold,release,restore',
    'the audit holds every kind of event');
my @not_logged = grep {
    my ($action, $id, $owner, $actor) = split /\|/;
    $log !~ /pg_batchguard: \Q$action\E of backup \Q$id\E \(owner \Q$owner\E\) by \Q$actor\E/
} @events;
is(scalar(@not_logged), 0, 'each of the ' . scalar(@events) . ' audit rows is in the server log')
  or diag(join("\n", @not_logged));
like($log, qr/pg_batchguard: delete of backup \Q$rolled_back\E/,
    'a deletion that rolled back (and left no audit row) is in the log');
is($node->safe_psql('postgres', "SELECT count(*) FROM batchguard.audit WHERE backup_id = '$rolled_back' AND action = 'delete'"),
    '0', 'where the audit has no row for it');

done_testing();
