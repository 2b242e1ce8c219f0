# Clones sharing one backup directory: a pg_basebackup copy started beside its source
# (same system identifier, same database oids, the same batchguard.backup_directory outside
# the data directory, inherited from postgresql.conf). Both run their workers for several
# rounds while each makes and deletes file-storage backups; every committed backup of each
# stays intact, each quarantines only orphans of its own folder, and each logs once that
# the other's folder is not its own.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $shared = PostgreSQL::Test::Utils::tempdir();
my $source = PostgreSQL::Test::Cluster->new('clone_source');
$source->init(allows_streaming => 1);
$source->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_batchguard'
batchguard.database_names = 'postgres'
batchguard.cleanup_interval = 1
batchguard.backup_directory = '$shared'
batchguard.backup_storage = 'file'
});
$source->start;
$source->safe_psql('postgres', q{
CREATE EXTENSION pg_batchguard;
CREATE TABLE items (id int PRIMARY KEY, body text);
INSERT INTO items SELECT g, repeat('item ', 40) || g FROM generate_series(1, 100) g;
});
my %made = (source => [], clone => []);
sub export_on {
    my ($node, $who, $n) = @_;
    my $id = $node->safe_psql('postgres',
        "SELECT backup_id FROM batchguard.export_backup('items', ARRAY['$n'], label => '$who $n')");
    push @{ $made{$who} }, $id;
    return $id;
}
export_on($source, 'source', $_) for 1 .. 2;
$source->backup('base');
my $clone = PostgreSQL::Test::Cluster->new('clone_copy');
$clone->init_from_backup($source, 'base');
$clone->start;
is($clone->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()'),
    $source->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()'),
    'the clone shares the system identifier');
is($clone->safe_psql('postgres', 'SELECT count(*) FROM batchguard.backups'), '2', 'it has the two backups of the base backup');

sub wait_rounds {    # waits until the worker of a node has started two more rounds
    my ($node) = @_;
    for (1 .. 2) {
        my $now = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
        $node->poll_query_until('postgres', qq{
            SELECT count(*) = 1 FROM pg_stat_activity
             WHERE backend_type = 'pg_batchguard worker' AND query_start > '$now'})
          or die 'no worker round';
    }
}
sub readable {
    my ($node, $id) = @_;
    return $node->safe_psql('postgres', qq{
        SELECT coalesce(bool_and(encode(sha256(batchguard.read_backup(backup_id)), 'hex') = file_sha256
                                 AND status = 'ok'), false)
          FROM batchguard.get_user_backups() WHERE backup_id = '$id'});
}

# Both make and delete backups while their workers run. The clone also deletes a backup
# it inherited: the row goes, the file stays (it is in the source's folder, the source
# still has its row).
my $inherited = $made{source}[0];
$clone->safe_psql('postgres', "SELECT batchguard.delete_backup('$inherited')");
for my $i (1 .. 4) {
    my $s = export_on($source, 'source', 10 + $i);
    my $c = export_on($clone, 'clone', 20 + $i);
    if ($i % 2 == 0) {
        $source->safe_psql('postgres', "SELECT batchguard.delete_backup('$s')");
        $clone->safe_psql('postgres', "SELECT batchguard.delete_backup('$c')");
        pop @{ $made{source} };
        pop @{ $made{clone} };
    }
    wait_rounds($source);
    wait_rounds($clone);
}
my $source_folder = $source->safe_psql('postgres', 'SELECT DISTINCT file_folder FROM batchguard.backups');
my @clone_folders = split /\n/, $clone->safe_psql('postgres',
    'SELECT DISTINCT file_folder FROM batchguard.backups ORDER BY 1');
is(scalar(@clone_folders), 2, "the clone reads the source's folder and writes its own");
ok((grep { $_ eq $source_folder } @clone_folders), "one of them is the source's");

for my $id (@{ $made{source} }) {
    is(readable($source, $id), 't', "source backup $id is intact on the source");
}
for my $id (@{ $made{clone} }) {
    is(readable($clone, $id), 't', "clone backup $id is intact on the clone");
}
is($source->safe_psql('postgres', q{SELECT count(*) FROM batchguard.backups WHERE status <> 'ok'}), '0',
    'no row of the source is missing or unreadable');
is($clone->safe_psql('postgres', q{SELECT count(*) FROM batchguard.backups WHERE status <> 'ok'}), '0',
    'no row of the clone is marked missing or unreadable');
is(readable($source, $inherited), 't', 'the backup the clone deleted is intact on the source');
is(readable($clone, $made{source}[1]), 't', "the clone still reads the other backup it inherited, from the source's folder");
ok($source->log_contains(qr/backup folder "\Q$shared\E\/$source_folder-[0-9a-f]{16}" belongs to another server/),
    "the source's worker logs that the clone's folder is not its own");
ok($clone->log_contains(qr/backup folder "\Q$shared\E\/$source_folder" belongs to another server/),
    "the clone's worker logs that the source's folder is not its own");
my $source_log = slurp_file($source->logfile);
my $reports = () = $source_log =~ /belongs to another server/g;
is($reports, 1, 'once');

# Orphans: each quarantines only those of its own folder.
my $xid = $source->safe_psql('postgres', 'SELECT installed_xid::text::bigint + 1 FROM batchguard.installation');
my ($clone_folder) = grep { $_ ne $source_folder } @clone_folders;
my $orphan = "00000000-0000-4000-8000-000000000001-$xid.jsonl.zst";
for my $folder ($source_folder, $clone_folder) {
    open(my $fh, '>', "$shared/$folder/$orphan") or die $!;
    print $fh "not a backup\n";
    close $fh;
}
$source->safe_psql('postgres', 'SELECT batchguard.run_maintenance()');
$clone->safe_psql('postgres', 'SELECT batchguard.run_maintenance()');
ok(!-e "$shared/$source_folder/$orphan" && -f "$shared/$source_folder/quarantine/$orphan",
    "the source's orphan is in its folder's quarantine");
ok(!-e "$shared/$clone_folder/$orphan" && -f "$shared/$clone_folder/quarantine/$orphan",
    "the clone's orphan is in its folder's quarantine");
for my $id (@{ $made{source} }) {
    is(readable($source, $id), 't', "source backup $id is still intact");
}
for my $id (@{ $made{clone} }) {
    is(readable($clone, $id), 't', "clone backup $id is still intact");
}

$clone->stop;
$source->stop;
done_testing();
