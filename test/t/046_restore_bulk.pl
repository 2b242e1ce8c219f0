# restore_backup's path per case (the DEBUG1 line it logs): COPY for plain tables, the
# INSERT path for every case docs/api.md lists (row security, triggers, partitioned tables,
# domains, rows a delete changed, a dry run, on_conflict 'skip'); and a restore by COPY
# into a LATIN1 database converts every value from the file's UTF-8.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('restore_bulk');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_batchguard'\n");
$node->start;

# The path restore_backup took (its DEBUG1 line), and whether the statement succeeded.
sub path_of {
    my ($db, $sql) = @_;
    my ($ret, $out, $err) = $node->psql($db, "SET client_min_messages = debug1; $sql");
    my @paths = $err =~ /restore_backup: (restoring by [^\n]*|the bulk path gave up[^\n]*|a foreign key refused[^\n]*)/g;
    return ($ret == 0 ? 'ok' : 'failed') . ': ' . join(' / ', @paths);
}
sub backup_of {
    my ($db, $table, $ids) = @_;
    return $node->safe_psql($db,
        "SELECT batchguard.delete_with_backup('$table', $ids) -> 'backup' ->> 'backup_id'");
}

$node->safe_psql('postgres', q{
CREATE EXTENSION pg_batchguard;
CREATE TABLE conv (id bigint PRIMARY KEY, title text, created timestamptz DEFAULT now());
CREATE TABLE turn (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                   conv_id bigint REFERENCES conv ON DELETE CASCADE, body text);
INSERT INTO conv SELECT g, 'conv ' || g FROM generate_series(1, 100) g;
INSERT INTO turn (conv_id, body) SELECT g % 100 + 1, E'turn\t' || g FROM generate_series(1, 500) g;
CREATE TABLE snapshot AS SELECT (SELECT string_agg(x::text, ',' ORDER BY id) FROM conv x) AS conv_rows,
                                (SELECT string_agg(y::text, ',' ORDER BY id) FROM turn y) AS turn_rows;
});
my $same = q{SELECT (SELECT string_agg(x::text, ',' ORDER BY id) FROM conv x) = s.conv_rows
                AND (SELECT string_agg(y::text, ',' ORDER BY id) FROM turn y) = s.turn_rows
               FROM snapshot s};

my $b = backup_of('postgres', 'conv', q{ARRAY(SELECT id::text FROM conv WHERE id <= 50)});
is(path_of('postgres', "SELECT batchguard.restore_backup('$b', dry_run => true)"),
    'ok: restoring by INSERT (a dry run)', 'a dry run counts by query');
is(path_of('postgres', "SELECT batchguard.restore_backup('$b')"),
    'ok: restoring by COPY', 'plain tables: COPY');
is($node->safe_psql('postgres', $same), 't', 'every row back, identical');
is(path_of('postgres', "SELECT batchguard.restore_backup('$b')"),
    'failed: restoring by COPY / restoring by INSERT (a dry run)',
    'restored again: COPY meets the conflict, a dry run counts it');
is(path_of('postgres', "SELECT batchguard.restore_backup('$b', on_conflict => 'skip')"),
    q{ok: restoring by INSERT (on_conflict is not 'error')}, "on_conflict 'skip': INSERT path");

# Row security for the caller: the INSERT path, under the policies.
$node->safe_psql('postgres', q{
CREATE ROLE tenant;
GRANT USAGE ON SCHEMA batchguard TO tenant;
CREATE TABLE secured (id int PRIMARY KEY, v text);
INSERT INTO secured SELECT g, 'v' || g FROM generate_series(1, 10) g;
GRANT SELECT, INSERT, UPDATE, DELETE ON secured TO tenant;
ALTER TABLE secured ENABLE ROW LEVEL SECURITY;
CREATE POLICY everything ON secured USING (true);
});
my $s = $node->safe_psql('postgres',
    q{SET ROLE tenant; SELECT batchguard.delete_with_backup('secured', '{1,2}') -> 'backup' ->> 'backup_id'});
is(path_of('postgres', "SET ROLE tenant; SELECT batchguard.restore_backup('$s')"),
    'ok: restoring by INSERT (table public.secured: row security applies to you)',
    'row security: INSERT path');

# Triggers, a partitioned table, a domain column: the INSERT path.
$node->safe_psql('postgres', q{
CREATE TABLE triggered (id int PRIMARY KEY, v text);
CREATE FUNCTION mark() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.v := NEW.v || '!'; RETURN NEW; END$$;
CREATE TRIGGER mark BEFORE INSERT ON triggered FOR EACH ROW EXECUTE FUNCTION mark();
CREATE TABLE parted (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (1000);
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
CREATE TABLE domained (id int PRIMARY KEY, n positive);
INSERT INTO triggered VALUES (1, 'a');
INSERT INTO parted VALUES (1, 'a');
INSERT INTO domained VALUES (1, 1);
});
for my $case (['triggered', 'it has INSERT triggers'], ['parted', 'it is partitioned'],
              ['domained', 'it has a column of a domain, composite or range type']) {
    my ($table, $why) = @$case;
    my $id = backup_of('postgres', $table, q{'{1}'});
    is(path_of('postgres', "SELECT batchguard.restore_backup('$id')"),
        "ok: restoring by INSERT (table public.$table: $why)", "$table: INSERT path");
}
# protect_table's triggers fire on DELETE, UPDATE and TRUNCATE only: COPY.
$node->safe_psql('postgres', q{
CREATE TABLE guarded (id int PRIMARY KEY, v text);
INSERT INTO guarded VALUES (1, 'a'), (2, 'b');
SELECT batchguard.protect_table('guarded');
});
my $g = backup_of('postgres', 'guarded', q{'{1,2}'});
is(path_of('postgres', "SELECT batchguard.restore_backup('$g')"), 'ok: restoring by COPY',
    'a protected table: COPY');
is($node->safe_psql('postgres', q{SELECT string_agg(id || v, ',' ORDER BY id) FROM guarded}),
    '1a,2b', 'a protected table: its rows back');
is($node->safe_psql('postgres', q{SELECT v FROM triggered}), 'a!!', 'the trigger fired (on the first INSERT, then on the restore)');

# Rows a delete changed (SET NULL): put back by UPDATE, the INSERT path.
$node->safe_psql('postgres', q{
CREATE TABLE pinned (id int PRIMARY KEY, conv_id bigint REFERENCES conv ON DELETE SET NULL);
INSERT INTO pinned VALUES (1, 60);
});
my $n = backup_of('postgres', 'conv', q{'{60}'});
like(path_of('postgres', "SELECT batchguard.restore_backup('$n')"),
    qr/^ok: restoring by INSERT \(table public\.pinned: the delete changed rows of it\)$/,
    'SET NULL rows: INSERT path');
is($node->safe_psql('postgres', q{SELECT conv_id FROM pinned}), '60', 'and the old value is back');

# A LATIN1 database: the values (UTF-8 in the file) converted by COPY.
$node->safe_psql('postgres',
    q{CREATE DATABASE latin TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'});
$node->safe_psql('latin', q{
CREATE EXTENSION pg_batchguard;
CREATE TABLE words (id int PRIMARY KEY, w text);
INSERT INTO words SELECT g, repeat(convert_from('\xe9e8ff', 'LATIN1'), g % 5) || chr(9) || chr(92) || g
  FROM generate_series(1, 200) g;
CREATE TABLE snapshot AS SELECT md5(string_agg(w, ',' ORDER BY id)) AS m FROM words;
});
my $l = backup_of('latin', 'words', q{ARRAY(SELECT id::text FROM words)});
is(path_of('latin', "SELECT batchguard.restore_backup('$l')"), 'ok: restoring by COPY',
    'LATIN1: COPY');
is($node->safe_psql('latin',
        q{SELECT md5(string_agg(w, ',' ORDER BY id)) = (SELECT m FROM snapshot) FROM words}),
    't', 'LATIN1: every value back, converted');

$node->stop;
done_testing();
