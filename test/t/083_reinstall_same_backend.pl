# What a backend remembers between calls of the per-item functions (the owner of the
# schema batchguard that SPI sessions run as, where each batch row was last seen, the
# prepared statements) is forgotten when the extension is dropped and created again in
# the same session, by another role: the next calls run as the new owner, against the new
# tables. One psql session does it all (one backend).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('reinstall');
$node->init;
$node->start;

my $out = $node->safe_psql('postgres', q{
CREATE ROLE first_owner SUPERUSER;
CREATE ROLE second_owner SUPERUSER;
CREATE ROLE worker;
SET ROLE first_owner;
CREATE EXTENSION pg_batchguard;
SET ROLE worker;
SELECT batchguard.complete_item('reinstalled', 'a'), batchguard.complete_item('reinstalled', 'b');
RESET ROLE;
DROP EXTENSION pg_batchguard;
DROP SCHEMA batchguard;  -- made by CREATE EXTENSION, not a member of it
DROP ROLE first_owner;
SET ROLE second_owner;
CREATE EXTENSION pg_batchguard;
SET ROLE worker;
SELECT batchguard.complete_item('reinstalled', 'c'), batchguard.complete_item('reinstalled', 'a');
SELECT array_to_string(completed_items, ',') FROM batchguard.load_checkpoint('reinstalled');
});
is($out, "t|t\nt|t\na,c",
    'after DROP and CREATE EXTENSION by another role, the same session records into the new tables');

done_testing();
