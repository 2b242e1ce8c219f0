# Owners are bound to their role (issue 13, Low 1): a role that is dropped and created
# again under the same name does not get the old role's rows while any remain, and the
# binding survives pg_dump / pg_restore into another database and into another cluster,
# where every role has a new OID. Nothing is ever deleted for it, least of all a backup on
# legal hold.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $origin = PostgreSQL::Test::Cluster->new('origin');
$origin->init;
$origin->start;
$origin->safe_psql('postgres', q{
CREATE EXTENSION pg_batchguard;
CREATE ROLE alice;
CREATE ROLE carol;
CREATE TABLE doc (id int PRIMARY KEY, body text);
INSERT INTO doc SELECT g, 'doc ' || g FROM generate_series(1, 5) g;
GRANT SELECT ON doc TO alice, carol;
SET ROLE alice;
SELECT job_id FROM batchguard.start_batch('alice-job', ARRAY['1', '2']);
SELECT legal_hold FROM batchguard.hold_backup((batchguard.export_backup('doc', '{1}')).backup_id);
SET ROLE carol;
SELECT job_id FROM batchguard.start_batch('carol-job', ARRAY['1']);
RESET ROLE;
REVOKE SELECT ON doc FROM carol;
DROP ROLE carol;
});

sub owner_of {
    my ($node, $db, $role) = @_;
    my ($ret, $out, $err) = $node->psql($db,
        "SET ROLE $role; SELECT batchguard.current_owner() || ' ' || (SELECT count(*) FROM batchguard.batches)"
          . " || ' ' || (SELECT count(*) FROM batchguard.backups)");
    return $ret == 0 ? $out : ($err =~ /ERROR:\s+(.*)/)[0];
}

is(owner_of($origin, 'postgres', 'alice'), 'alice 1 1', 'alice owns her batch and backup');
$origin->safe_psql('postgres', 'CREATE ROLE carol');
like(owner_of($origin, 'postgres', 'carol'), qr/role "carol" is not the role/,
    'a new carol is refused while the old carol\'s batch remains');

# pg_dump of the database; first restored into another database of the same cluster.
my $dump = $origin->basedir . '/postgres.dump';
$origin->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $origin->connstr('postgres') ], 'pg_dump');
$origin->safe_psql('postgres', 'CREATE DATABASE copy');
$origin->command_ok([ 'pg_restore', '-d', $origin->connstr('copy'), $dump ], 'pg_restore into another database');
is(owner_of($origin, 'copy', 'alice'), 'alice 1 1', 'alice keeps her rows in the restored database');
like(owner_of($origin, 'copy', 'carol'), qr/role "carol" is not the role/,
    'the new carol is still refused there');

# Into another cluster whose roles were created in another order, after others: every
# role has another OID there.
my $target = PostgreSQL::Test::Cluster->new('target');
$target->init;
$target->start;
$target->safe_psql('postgres', q{
CREATE ROLE filler_1;
CREATE ROLE filler_2;
CREATE ROLE carol;
CREATE ROLE filler_3;
CREATE ROLE alice;
});
isnt($target->safe_psql('postgres', "SELECT 'alice'::regrole::oid"),
    $origin->safe_psql('postgres', "SELECT 'alice'::regrole::oid"), 'alice has another OID in the target cluster');
$target->command_ok([ 'pg_restore', '-d', $target->connstr('postgres'), $dump ], 'pg_restore into another cluster');
is(owner_of($target, 'postgres', 'alice'), 'alice 1 1', 'alice keeps her rows in the other cluster');
like(owner_of($target, 'postgres', 'carol'), qr/role "carol" is not the role/,
    'a carol of the other cluster does not get the dropped carol\'s rows');

# Dropped and created again in the target cluster: refused, nothing deleted; a superuser
# hands the rows to the new role.
$target->safe_psql('postgres', q{
REVOKE SELECT ON doc FROM alice;
DROP ROLE alice;
CREATE ROLE alice;
});
like(owner_of($target, 'postgres', 'alice'), qr/role "alice" is not the role/,
    'alice dropped and created again is refused');
is($target->safe_psql('postgres', "SELECT count(*) FROM batchguard.backups WHERE owner = 'alice' AND legal_hold"),
    '1', 'her held backup is still there');
is($target->safe_psql('postgres', "SELECT batchguard.adopt_owner('alice')"), 't', 'adopt_owner');
is(owner_of($target, 'postgres', 'alice'), 'alice 1 1', 'the new alice has the rows');

$origin->stop;
$target->stop;
done_testing();
