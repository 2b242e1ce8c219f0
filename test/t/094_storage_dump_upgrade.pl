# pg_dump / pg_restore into a new database (a new oid) and pg_upgrade into a new data
# directory:
# - restored, in-database backups are readable and restorable at once; file-storage ones
#   are reported "detached" (never missing, never swept) until the single documented step,
#   SELECT batchguard.attach_backup_files(), links them into the new database's folder;
# - pg_upgrade refuses while backup files live under the old data directory (they would
#   be left behind); once the folder is moved outside and batchguard.backup_directory
#   points there, the upgrade runs without any pg_batchguard worker (binary upgrade mode),
#   and every backup of the upgraded cluster is readable, the moved folder recognised as
#   its own.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Copy qw(move);
use File::Path qw(rmtree);

my $node = PostgreSQL::Test::Cluster->new('dump_old');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_batchguard'
batchguard.database_names = 'app'
batchguard.cleanup_interval = 1
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('app', q{
CREATE EXTENSION pg_batchguard;
CREATE TABLE posts (id int PRIMARY KEY, body text);
CREATE TABLE comments (id int PRIMARY KEY, post_id int REFERENCES posts ON DELETE CASCADE, body text);
INSERT INTO posts SELECT g, 'post ' || g FROM generate_series(1, 30) g;
INSERT INTO comments SELECT g, 1 + g % 30, 'comment ' || g FROM generate_series(1, 90) g;
CREATE ROLE regress_storage_user;
});
my %b;
$b{deleted} = $node->safe_psql('app',
    q{SELECT batchguard.delete_with_backup('posts', '{1,2,3}') -> 'backup' ->> 'backup_id'});
$b{in_db} = $node->safe_psql('app',
    q{SELECT backup_id FROM batchguard.export_backup('posts', '{4,5}', label => 'in the database')});
$b{file} = $node->safe_psql('app', q{
    SET batchguard.backup_storage = 'file';
    SELECT backup_id FROM batchguard.export_backup('posts', '{6}', label => 'file')});
$b{held} = $node->safe_psql('app', q{
    SET batchguard.backup_storage = 'file';
    SELECT backup_id FROM batchguard.export_backup('posts', '{7}', label => 'held file')});
$node->safe_psql('app', "SELECT batchguard.hold_backup('$b{held}')");

sub readable {
    my ($n, $db, $id) = @_;
    return $n->safe_psql($db, qq{
        SELECT coalesce(bool_and(encode(sha256(batchguard.read_backup(backup_id)), 'hex') = file_sha256), false)
          FROM batchguard.backups WHERE backup_id = '$id'});
}
sub error_of {
    my ($n, $db, $sql) = @_;
    my ($ret, $out, $err) = $n->psql($db, $sql);
    $err =~ s/\n.*//s;
    return $ret == 0 ? 'ok' : $err;
}

# --- pg_dump -Fc and pg_restore into a new database on the same server.
my $dump = $node->basedir . '/app.dump';
$node->command_ok(['pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('app')], 'pg_dump -Fc');
$node->safe_psql('postgres', 'CREATE DATABASE app2');
$node->command_ok(['pg_restore', '--exit-on-error', '-d', $node->connstr('app2'), $dump], 'pg_restore into a new database');
isnt($node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = 'app2'}),
    $node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = 'app'}), 'the new database has a new oid');
is($node->safe_psql('app2', 'SELECT count(*) FROM batchguard.backups'), '4', 'the backups rows are restored');
is($node->safe_psql('app2', q{SELECT string_agg(coalesce(label, 'delete') || ':' || status, ', ' ORDER BY created_at)
                               FROM batchguard.get_user_backups()}),
    'delete:ok, in the database:ok, file:detached, held file:detached',
    'in-database backups are ok; file backups are detached, not missing');
is(readable($node, 'app2', $b{in_db}), 't', 'an in-database backup is readable in the restored database');
is($node->safe_psql('app2', qq{SELECT batchguard.restore_backup('$b{deleted}') ->> 'inserted'}),
    '12', 'the delete backup restores its 3 posts and 9 comments in the restored database');
is($node->safe_psql('app2', 'SELECT count(*) FROM posts'), '30', 'every post is back there');
like(error_of($node, 'app2', "SELECT batchguard.read_backup('$b{file}')"),
    qr/ERROR:  backup $b{file} is not attached to this database$/, 'reading a detached backup: a clear error');
my ($ret, $out, $err) = $node->psql('app2', "\\set VERBOSITY verbose\nSELECT * FROM batchguard.backup_rows('$b{file}')");
like($err, qr/ERROR:  PB105: /, 'SQLSTATE PB105');
like($err, qr/HINT:  .*batchguard\.attach_backup_files\(\)/, 'the hint names the step that re-attaches it');
is($node->safe_psql('app2', q{SELECT (r ->> 'missing_files') || ' ' || (r ->> 'orphan_files_removed') FROM batchguard.run_maintenance() r}),
    '0 0', 'maintenance takes nothing for missing and sweeps nothing');
is($node->safe_psql('app2', q{SELECT string_agg(status, ',' ORDER BY label) FROM batchguard.backups WHERE storage = 'file'}),
    'detached,detached', 'the stored status says detached');
like(error_of($node, 'app2', 'SET ROLE regress_storage_user; SELECT batchguard.attach_backup_files()'),
    qr/ERROR:  permission denied for function attach_backup_files$/, 'attaching files is for superusers');
is($node->safe_psql('app2', 'SELECT batchguard.attach_backup_files()'), '2', 'attach_backup_files() re-attaches both');
is($node->safe_psql('app2', q{SELECT string_agg(status, ',') FROM batchguard.get_user_backups() WHERE storage = 'file'}),
    'ok,ok', 'they are ok now');
is(readable($node, 'app2', $b{file}) . readable($node, 'app2', $b{held}), 'tt', 'and readable in the restored database');
is($node->safe_psql('app2', 'SELECT batchguard.attach_backup_files()'), '0', 'a second call has nothing to do');
$node->safe_psql('app2', "SELECT batchguard.delete_backup('$b{file}')");
is(readable($node, 'app', $b{file}) . readable($node, 'app', $b{held}), 'tt',
    'the original database still reads its files, even after the restored copy deleted one');
is($node->safe_psql('app', 'SELECT count(*) FROM batchguard.backups'), '4', 'and has all its backups');

# --- pg_upgrade into a new data directory.
my $new = PostgreSQL::Test::Cluster->new('upgrade_new');
$new->init;
$new->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_batchguard'
batchguard.database_names = 'app'
batchguard.cleanup_interval = 1
});
$node->safe_psql('postgres', 'DROP DATABASE app2');
my $bindir = $node->config_data('--bindir');
my $old_sysid = $node->safe_psql('app', 'SELECT system_identifier FROM pg_control_system()');
$node->stop;
chdir $new->basedir;
my @upgrade = ('pg_upgrade', '--no-sync', '--retain', '-d', $node->data_dir, '-D', $new->data_dir,
    '-b', $bindir, '-B', $bindir, '-s', $new->host, '-p', $node->port, '-P', $new->port);
command_fails(\@upgrade, 'pg_upgrade refuses while backup files are under the old data directory');
my $logs = join '', map { slurp_file($_) } glob($new->data_dir . '/pg_upgrade_output.d/*/log/pg_upgrade_server.log');
like($logs, qr/FATAL:  pg_batchguard: backup files in "[^"]*pg_batchguard" inside the data directory would be left behind by pg_upgrade/,
    'the old server says why');
like($logs, qr/HINT:  Move the folder out of the data directory and set batchguard.backup_directory/, 'and what to do');
rmtree($new->data_dir . '/pg_upgrade_output.d');

# The documented step: the folder moves outside the data directory, the setting follows.
my $outside = PostgreSQL::Test::Utils::tempdir() . '/backups';
move($node->data_dir . '/pg_batchguard', $outside) or die "move: $!";
for my $n ($node, $new) {
    $n->append_conf('postgresql.conf', "batchguard.backup_directory = '$outside'\n");
}
command_ok(\@upgrade, 'pg_upgrade with the backup folder outside the data directory');
$logs = join '', map { slurp_file($_) } glob($new->data_dir . '/pg_upgrade_output.d/*/log/pg_upgrade_server.log');
like($logs, qr/database system is ready to accept connections/, 'the upgrade log has both servers');
unlike($logs, qr/pg_batchguard (launcher|worker)/, 'no pg_batchguard launcher or worker ran during the binary upgrade');
$new->start;
isnt($new->safe_psql('app', 'SELECT system_identifier FROM pg_control_system()'), $old_sysid,
    'the upgraded cluster has a new system identifier');
is($new->safe_psql('app', q{SELECT string_agg(coalesce(label, 'delete') || ':' || status, ', ' ORDER BY created_at)
                             FROM batchguard.get_user_backups()}),
    'delete:ok, in the database:ok, file:ok, held file:ok', 'every backup is ok after pg_upgrade');
is(readable($new, 'app', $_), 't', "backup $_ is readable after pg_upgrade") for sort values %b;
is($new->safe_psql('app', q{SELECT (r ->> 'missing_files') || ' ' || (r ->> 'orphan_files_removed') FROM batchguard.run_maintenance() r}),
    '0 0', 'maintenance of the upgraded cluster takes its folder as its own: nothing missing, nothing swept');
my $now = $new->safe_psql('app', 'SELECT clock_timestamp()');
ok($new->poll_query_until('app', qq{
    SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_batchguard worker' AND query_start > '$now'}),
    'the worker runs once the upgraded cluster is started normally');
ok(!$new->log_contains(qr/belongs to another server/), 'it does not take its own moved folder for a foreign one');

$new->stop;
done_testing();
