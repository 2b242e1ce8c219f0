# Issue 13 (safe for untrusted tenants) where it needs a preloaded library or a server of
# its own: batchguard.export_progress shows each owner its own exports, not every export of
# its role (Medium 5); the total storage limit counts exports in progress (Medium 7);
# messages to ordinary roles name no path inside batchguard.backup_directory (Low 5); the
# maintenance worker commits each step on its own, so a failing step undoes nothing of the
# others (Medium 6), and never runs look-alike objects an untrusted role planted in public
# (High 1).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('tenant');
$node->init;
# An absolute directory outside the data directory: messages must not show it.
my $backups = $node->basedir . '/backup_files';
mkdir $backups or die "mkdir $backups: $!";
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_batchguard'
batchguard.database_names = ''
batchguard.cleanup_interval = 1
batchguard.backup_directory = '$backups'
batchguard.backup_storage = 'file'
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION pg_batchguard;
CREATE ROLE web;
CREATE ROLE alice LOGIN;
CREATE ROLE bob;
CREATE ROLE mallory;
SELECT batchguard.map_identity('web', 'request.jwt.claims', 'sub');
CREATE TABLE doc (id int PRIMARY KEY, body text);
INSERT INTO doc SELECT g, md5(g::text) FROM generate_series(1, 25) g;  -- about 1.3 kB compressed
GRANT SELECT ON doc TO web, alice, bob;
-- a table whose row security waits while the test holds advisory lock 4242
CREATE FUNCTION gate() RETURNS boolean LANGUAGE sql AS $$ SELECT true FROM pg_advisory_lock_shared(4242) $$;
CREATE TABLE gated (id int PRIMARY KEY);
INSERT INTO gated VALUES (1);
ALTER TABLE gated ENABLE ROW LEVEL SECURITY;
CREATE POLICY pass ON gated USING (gate());
GRANT SELECT ON gated TO web, alice;
});
my $dboid = $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = 'postgres'");
my $folder = "$backups/$dboid";

sub as_user {
    my ($sub, $sql) = @_;
    return "SET ROLE web; SET request.jwt.claims = '{\"sub\": \"$sub\"}'; $sql";
}
sub error_of {
    my ($sql) = @_;
    my ($ret, $out, $err) = $node->psql('postgres', $sql);
    return $ret == 0 ? 'ok' : $err;
}

# --- Medium 5: export_progress filters by owner. user-1's export waits in its row security.
my $gate = $node->background_psql('postgres');
$gate->query_safe('SELECT pg_advisory_lock(4242)');
my $exporter = $node->background_psql('postgres');
$exporter->query_until(qr/started/, as_user('user-1', "\\echo started\nSELECT batchguard.export_backup('gated');\n"));
ok($node->poll_query_until('postgres',
    "SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"),
    "user-1's export is running (waiting in its row security)");
is($node->safe_psql('postgres', as_user('user-2', 'SELECT count(*) FROM batchguard.export_progress')),
    '0', "another end user of the same role does not see user-1's export");
is($node->safe_psql('postgres', 'SET ROLE alice; SELECT count(*) FROM batchguard.export_progress'),
    '0', 'nor does another role');
is($node->safe_psql('postgres', as_user('user-1', 'SELECT count(*) FROM batchguard.export_progress')),
    '1', 'user-1 sees it from another session');
is($node->safe_psql('postgres', 'SELECT count(*) FROM batchguard.export_progress'),
    '1', 'a member of pg_read_all_stats sees every export');
$gate->query_safe('SELECT pg_advisory_unlock(4242)');
$gate->quit;
$exporter->quit;
is($node->safe_psql('postgres', as_user('user-1', 'SELECT count(*) FROM batchguard.backups')),
    '1', "user-1's export finished");

# --- Medium 7: batchguard.max_backup_bytes counts the exports in progress. One export of
# doc fits in 2 kB, two do not: alice's open export keeps bob's from starting.
my $open = $node->background_psql('postgres');
$open->query_safe("SET batchguard.max_backup_bytes = '2kB'");
$open->query_safe('SET ROLE alice');
$open->query_safe('BEGIN');
is($open->query_safe("SELECT compressed_bytes < 2048 FROM batchguard.export_backup('doc')"), 't',
    "alice's export fits (not committed yet)");
like(error_of("SET batchguard.max_backup_bytes = '2kB'; SET ROLE bob; SELECT batchguard.export_backup('doc')"),
    qr/backup storage limit exceeded/, "bob's export is refused while alice's is in progress");
$open->query_safe('ROLLBACK');
is(error_of("SET batchguard.max_backup_bytes = '2kB'; SET ROLE bob; SELECT batchguard.export_backup('doc')"),
    'ok', "once alice's rolled back, bob's fits");
like(error_of("SET batchguard.max_backup_bytes = '2kB'; SET ROLE alice; SELECT batchguard.export_backup('doc')"),
    qr/backup storage limit exceeded/, "and then alice's no longer does");
$open->quit;

# --- Low 5: messages shown to ordinary roles name no path inside the backup directory.
# alice logs in herself: the message is for her session.
sub as_alice {
    my ($sql) = @_;
    my ($ret, $out, $err) = $node->psql('postgres', $sql, extra_params => [ '-U', 'alice' ]);
    return ($ret, $out, $err);
}
my $alice_backup = $node->safe_psql('postgres',
    "SELECT backup_id || '-' || creating_xid FROM batchguard.export_backup('doc', '{1}')",
    extra_params => [ '-U', 'alice' ]);
my ($alice_id) = $alice_backup =~ /^(.{36})/;
my $alice_file = "$folder/$alice_backup.jsonl.zst";
ok(-f $alice_file, "alice's backup file is in the configured directory");
unlink($alice_file) or die "unlink: $!";
symlink($node->data_dir . '/postgresql.conf', $alice_file) or die "symlink: $!";
my (undef, undef, $err) = as_alice("SELECT batchguard.read_backup('$alice_id', 0, 10)");
like($err, qr/symbolic links/, 'a symlinked file is refused');
unlike($err, qr/\Q$backups\E/, '... without naming the backup directory to alice');
like($err, qr/<batchguard.backup_directory>\/$dboid\/$alice_backup/, '... but the file in it');
unlink($alice_file) or die "unlink: $!";
my (undef, undef, $warnings) = as_alice('SELECT batchguard.run_maintenance()');
like($warnings, qr/the file of backup $alice_id \(owner alice\) is missing/,
    "run_maintenance() warns alice of her missing file");
unlike($warnings, qr/\Q$backups\E/, '... without naming the backup directory');
like(slurp_file($node->logfile), qr/Expected "\Q$folder\E\/$alice_backup\.jsonl\.zst"/,
    'the server log has the whole path');
as_alice("SELECT batchguard.delete_backup('$alice_id')");

# --- High 1: mallory plants look-alikes in public; the worker (a superuser, whose
# search_path has public) runs its rounds among them.
$node->safe_psql('postgres', q{
GRANT CREATE ON SCHEMA public TO mallory;
CREATE SCHEMA regress_sp_evil AUTHORIZATION mallory;
CREATE FUNCTION public.concat_lookalike(a text, b bigint) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RAISE WARNING 'look-alike public.||(text, bigint) called';
    EXECUTE 'ALTER ROLE mallory SUPERUSER';
    RETURN a OPERATOR(pg_catalog.||) b;
END $$;
ALTER FUNCTION public.concat_lookalike(text, bigint) OWNER TO mallory;
CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = bigint, FUNCTION = public.concat_lookalike);
ALTER OPERATOR public.|| (text, bigint) OWNER TO mallory;
});
my $lookalikes = slurp_file('test/lookalikes.sql');
$node->safe_psql('postgres', "SET ROLE mallory;\n$lookalikes");

# Work for every step: an expired backup, an expired lease, a finished batch, an orphan
# file, a missing file.
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT batchguard.export_backup('doc', '{2}', label => 'expired');
SELECT batchguard.export_backup('doc', '{3}', label => 'kept');
SELECT job_id FROM batchguard.start_batch('leased', ARRAY['1', '2']);
SELECT count(*) FROM batchguard.claim_items('leased', 1, lease => '1 millisecond');
SELECT job_id FROM batchguard.start_batch('done', ARRAY['1']);
SELECT batchguard.complete_item('done', '1');
RESET ROLE;
UPDATE batchguard.backups SET expires_at = now() - interval '1 minute' WHERE label = 'expired';
ALTER SYSTEM SET batchguard.finished_batch_retention = 0;
});
# an orphan: named like a backup of a transaction of this installation that has ended
my $orphan_xid = $node->safe_psql('postgres', 'SELECT pg_current_xact_id()');
$node->safe_psql('postgres', 'SELECT pg_current_xact_id()');
my $orphan = "$folder/00000000-0000-4000-8000-000000000001-$orphan_xid.jsonl.zst";

# --- Medium 6: each step commits on its own. With the folder unreadable, the file-status
# step would mark 'kept' unreadable (an unreadable folder fails no step: its backups are
# 'unreadable'); a trigger refuses that update, so the step fails, yet expired leases are
# released, expired backups removed and finished batches purged in the same rounds.
$node->safe_psql('postgres', q{
CREATE FUNCTION public.refuse_status_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'status change refused by the test';
END $$;
CREATE TRIGGER refuse_unreadable BEFORE UPDATE ON batchguard.backups FOR EACH ROW
    WHEN (NEW.status OPERATOR(pg_catalog.=) 'unreadable') EXECUTE FUNCTION public.refuse_status_change();
});
chmod 0000, $folder or die "chmod: $!";
# CALL batchguard.maintain() (what pg_cron schedules) does the same within one call.
my ($maintain_ret, $maintain_out, $maintain_err) = $node->psql('postgres', 'CALL batchguard.maintain()');
is($maintain_ret, 0, 'maintain() completes with a failing step');
like($maintain_err, qr/step "missing files" failed: status change refused by the test/,
    '... warning of the failed step');
like($maintain_out, qr/"failed_steps": \["missing files"\]/,
    '... naming the failed step in its summary');
like($maintain_out, qr/"expired_backups": 1/, '... and its other steps ran');
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', q{
ALTER SYSTEM SET batchguard.database_names = 'postgres';
SELECT pg_reload_conf();
});
ok($node->poll_query_until('postgres', q{
SELECT (SELECT count(*) FROM batchguard.batch_items i JOIN batchguard.batches b USING (batch_id)
         WHERE b.job_id = 'leased' AND i.status = 'pending') = 2
   AND NOT EXISTS (SELECT FROM batchguard.batches WHERE job_id = 'done')}),
    'with a step failing, the worker still releases leases and purges finished batches');
like(slurp_file($node->logfile, $log_offset), qr/status change refused by the test/,
    'the failing step is logged');
chmod 0700, $folder or die "chmod: $!";
$node->safe_psql('postgres', 'DROP TRIGGER refuse_unreadable ON batchguard.backups; DROP FUNCTION public.refuse_status_change()');

# the rest of the steps once the folder is readable again
open(my $fh, '>', $orphan) or die "open: $!";
close($fh);
# (mallory's look-alikes are in public now: this test's own SQL qualifies its operators)
my $kept = $node->safe_psql('postgres',
    "SELECT backup_id::text OPERATOR(pg_catalog.||) '-' OPERATOR(pg_catalog.||) creating_xid::text"
      . " FROM batchguard.backups WHERE label OPERATOR(pg_catalog.=) 'kept'");
unlink("$folder/$kept.jsonl.zst") or die "unlink: $!";
ok($node->poll_query_until('postgres',
    "SELECT status = 'missing' FROM batchguard.backups WHERE label = 'kept'"),
    'the missing file is found');
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
sleep 1 while -e $orphan && time < $deadline;
ok(!-e $orphan, 'the orphan is swept');
(my $orphan_name = $orphan) =~ s{.*/}{};
ok(-f "$folder/quarantine/$orphan_name", '... into the quarantine of its folder');

my $log = slurp_file($node->logfile);
unlike($log, qr/WARNING:  look-alike/, 'the worker never ran a look-alike object');
is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'"),
    'f', 'mallory is no superuser');

$node->stop;
done_testing();
