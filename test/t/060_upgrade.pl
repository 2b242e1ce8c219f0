# Upgrades: a database created at the current version and one created at 1.0 and then
# updated have identical extension catalogs (test/extension_catalog.sql, every member
# object with its whole definition). A database at 1.0 holding batches, leases, backups
# and identity mappings keeps working on the current shared library before it is updated,
# and after ALTER EXTENSION ... UPDATE every object still works and the worker carries on.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $current = slurp_file('pg_batchguard.control') =~ /^default_version\s*=\s*'([^']+)'/m
    ? $1 : die 'no default_version in pg_batchguard.control';

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_batchguard'
batchguard.database_names = 'data'
batchguard.cleanup_interval = 1
});
$node->start;

# --- Catalogs: fresh install vs 1.0 + update.
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('postgres', 'CREATE DATABASE updated');
$node->safe_psql('fresh', 'CREATE EXTENSION pg_batchguard');
$node->safe_psql('updated', "CREATE EXTENSION pg_batchguard VERSION '1.0'");
is($node->safe_psql('updated', "SELECT extversion FROM pg_extension WHERE extname = 'pg_batchguard'"),
    '1.0', 'created at 1.0');
$node->safe_psql('updated', 'ALTER EXTENSION pg_batchguard UPDATE');
is($node->safe_psql('updated', "SELECT extversion FROM pg_extension WHERE extname = 'pg_batchguard'"),
    $current, "updated to $current");

sub catalog {
    my ($db) = @_;
    return $node->safe_psql($db, slurp_file('test/extension_catalog.sql'));
}
my ($fresh, $updated) = (catalog('fresh'), catalog('updated'));
my $lines = () = $fresh =~ /\n/g;
cmp_ok($lines, '>', 200, "the listing covers the catalog ($lines lines)");
if ($fresh eq $updated) {
    pass('fresh install and 1.0 + update have identical catalogs');
} else {
    my %in_fresh = map { $_ => 1 } split /\n/, $fresh;
    my %in_updated = map { $_ => 1 } split /\n/, $updated;
    diag("only in the fresh install: $_") for grep { !$in_updated{$_} } split /\n/, $fresh;
    diag("only after the update: $_") for grep { !$in_fresh{$_} } split /\n/, $updated;
    fail('fresh install and 1.0 + update have identical catalogs');
}

# --- Data made at 1.0 survives the new library and the update.
$node->safe_psql('postgres', 'CREATE DATABASE data');
$node->safe_psql('data', q{
    CREATE EXTENSION pg_batchguard VERSION '1.0';
    CREATE ROLE regress_upgrade_web NOLOGIN;
    SELECT batchguard.map_identity('regress_upgrade_web', 'request.jwt.claims', 'sub');
    CREATE TABLE conversations (id int PRIMARY KEY, body text);
    CREATE TABLE turns (id int PRIMARY KEY, conversation_id int REFERENCES conversations ON DELETE CASCADE, n int);
    INSERT INTO conversations SELECT g, 'conversation ' || g FROM generate_series(1, 30) g;
    INSERT INTO turns SELECT g, 1 + g % 30, g FROM generate_series(1, 90) g;
    -- a lazy batch, and a leased one with leases running
    SELECT batchguard.complete_item('lazy', 'a', '{"n": 1}');
    SELECT batchguard.fail_item('lazy', 'b', 'boom');
    SELECT batchguard.start_batch('leased', ARRAY['x1', 'x2', 'x3', 'x4'], max_attempts => 2);
    CREATE TABLE leases AS SELECT * FROM batchguard.claim_items('leased', 2, '1 hour');
    -- backups: one kept, one on hold, one expired, one made by a delete
    CREATE TABLE kept AS SELECT backup_id FROM batchguard.export_backup('conversations', '{1,2}', label => 'kept');
    CREATE TABLE held AS SELECT backup_id FROM batchguard.export_backup('conversations', '{3}', label => 'held');
    CREATE TABLE expired AS SELECT backup_id FROM batchguard.export_backup('conversations', '{4}', label => 'expired');
    SELECT batchguard.hold_backup(backup_id) FROM held;
    CREATE TABLE deleted AS SELECT (batchguard.delete_with_backup('conversations', '{5,6}') -> 'backup' ->> 'backup_id')::uuid AS backup_id;
});
# The current library serves the database still at 1.0 (binaries are upgraded first).
is($node->safe_psql('data', q{
    SELECT (SELECT completed || '/' || failed FROM batchguard.calculate_progress('lazy'))
        || ' ' || (SELECT count(*) FROM batchguard.complete_items('leased', ARRAY(SELECT lease_token FROM leases)) x)
        || ' ' || (SELECT array_to_string(batchguard.filter_pending_items('lazy', '{a,b,c}'), ','))
        || ' ' || (SELECT pg_catalog.length(batchguard.read_backup(backup_id)) > 0 FROM kept)
        || ' ' || (SELECT count(*) FROM batchguard.backup_rows((SELECT backup_id FROM deleted)))
}), '1/1 1 c true 8', 'the 1.0 functions work on the current library');

$node->safe_psql('data', 'ALTER EXTENSION pg_batchguard UPDATE');
is($node->safe_psql('data', q{
    SELECT (SELECT status || ' ' || completed || '/' || failed || '/' || pending FROM batchguard.calculate_progress('leased'))
        || ' | ' || (SELECT string_agg(coalesce(label, '(delete)') || ':' || status || ':' || legal_hold, ',' ORDER BY coalesce(label, '(delete)') COLLATE "C") FROM batchguard.backups)
        || ' | ' || (SELECT count(*) FROM batchguard.identity_map)
}), "running 2/0/2 | (delete):ok:false,expired:ok:false,held:ok:true,kept:ok:false | 1",
    'batches, backups and mappings are intact after the update');

# Every kind of object still works after the update.
is($node->safe_psql('data', q{
    SELECT count(*) FROM batchguard.claim_items('leased', 10, '1 minute')
}), '2', 'the remaining items can be claimed');
is($node->safe_psql('data', q{
    SELECT batchguard.restore_backup(backup_id) ->> 'inserted' FROM deleted
}), '8', 'the backup made by the delete restores its rows');
is($node->safe_psql('data', 'SELECT count(*) FROM conversations'), '30', 'every row is back');
is($node->safe_psql('data', q{
    SET ROLE regress_upgrade_web;
    SET request.jwt.claims = '{"sub": "u1"}';
    SELECT batchguard.current_owner();
}), 'regress_upgrade_web/u1', 'the identity mapping still applies');

# The worker carries on: the expired backup goes, the held one stays.
$node->safe_psql('data', q{
    UPDATE batchguard.backups SET expires_at = now() - interval '1 second'
     WHERE backup_id IN (SELECT backup_id FROM expired UNION ALL SELECT backup_id FROM held)
});
ok($node->poll_query_until('data', q{
    SELECT NOT EXISTS (SELECT FROM batchguard.backups WHERE backup_id = (SELECT backup_id FROM expired))
}), 'the worker removes the expired backup after the update');
is($node->safe_psql('data', q{
    SELECT count(*) FROM batchguard.backups WHERE backup_id = (SELECT backup_id FROM held)
}), '1', 'the held backup stays');

$node->stop;
done_testing();
