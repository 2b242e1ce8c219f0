# A backup of format 1, written by pg_batchguard 1.0's code (test/fixtures/format1: the
# file of a delete_with_backup and its batchguard.backups row), stays readable and
# restorable: some such files are on legal hold for years. The extension is created at 1.0,
# the row inserted as 1.0 wrote it (on legal hold) and the file put where 1.0 kept it; then
# the extension is updated to the current version (the row becomes a file-storage backup).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Copy;
use File::Path qw(make_path);

my $fixtures = 'test/fixtures/format1';
my $node = PostgreSQL::Test::Cluster->new('format1');
$node->init;
$node->start;
# The tables as they were after 1.0's delete_with_backup('fx_conv', '{1}').
$node->safe_psql('postgres', q{
CREATE EXTENSION pg_batchguard VERSION '1.0';
CREATE TABLE fx_conv (id bigint PRIMARY KEY, title text NOT NULL, meta jsonb, amount numeric,
                      at timestamptz, tags text[]);
CREATE TABLE fx_msg (id bigint PRIMARY KEY, conv_id bigint REFERENCES fx_conv ON DELETE CASCADE,
                     body text, score float8);
CREATE TABLE fx_pin (id bigint PRIMARY KEY, conv_id bigint REFERENCES fx_conv ON DELETE SET NULL,
                     note text);
INSERT INTO fx_conv VALUES (2, 'second', NULL, 'NaN', 'infinity', '{}');
INSERT INTO fx_msg VALUES (20, 2, 'other', 3);
INSERT INTO fx_pin VALUES (100, NULL, 'pinned'), (200, 2, 'kept');
});

my $row = slurp_file("$fixtures/row.json");
chomp $row;
$row =~ s/'/''/g;
# The row as 1.0 wrote it, with the columns 1.0 had; on legal hold so that it never expires.
$node->safe_psql('postgres', qq{
DO \$\$
DECLARE
    j jsonb := '$row';
    cols text;
BEGIN
    SELECT string_agg(quote_ident(k), ', ') INTO cols FROM jsonb_object_keys(j) k;
    EXECUTE format('INSERT INTO batchguard.backups (%s) SELECT %s FROM jsonb_populate_record('
                   'NULL::batchguard.backups, \$1)', cols, cols) USING j;
    UPDATE batchguard.backups SET legal_hold = true WHERE backup_id = (j ->> 'backup_id')::uuid;
END
\$\$;
});
my ($id, $xid) = split /\|/, $node->safe_psql('postgres',
    'SELECT backup_id, creating_xid FROM batchguard.backups');
my $dboid = $node->safe_psql('postgres',
    'SELECT oid FROM pg_database WHERE datname = current_database()');
my $dir = $node->data_dir . "/pg_batchguard/$dboid";
make_path($dir);
copy("$fixtures/backup.jsonl.zst", "$dir/$id-$xid.jsonl.zst") or die "copy: $!";
chmod 0600, "$dir/$id-$xid.jsonl.zst";
$node->safe_psql('postgres', 'ALTER EXTENSION pg_batchguard UPDATE');

is($node->safe_psql('postgres', "SELECT format_version || ' ' || status FROM batchguard.backups"),
    '1 ok', 'the format-1 backup is listed, its file found');
is($node->safe_psql('postgres', qq{
    SELECT string_agg(table_name || ' ' || "row"::text, ' | ' ORDER BY table_name, "row"::text)
      FROM batchguard.backup_rows('$id')}),
    'public.fx_conv {"at": "2024-03-04T05:06:07.25+00:00", "id": 1, "meta": {"k": [1, 2.50]}, '
      . '"tags": ["a", "b c"], "title": "first \"quoted\" ünï", "amount": 1.500} | '
      . 'public.fx_msg {"id": 10, "body": "line\nbreak", "score": 0.1, "conv_id": 1} | '
      . 'public.fx_msg {"id": 11, "body": "émoji 🎉", "score": -1' . ('0' x 300) . ', "conv_id": 1} | '
      . 'public.fx_pin {"id": 100, "note": "pinned", "conv_id": 1}',
    'backup_rows reads format 1 as 1.0 wrote it (jsonb shows -1e+300 with every digit)');
is($node->safe_psql('postgres', qq{
    SELECT r ->> 'inserted' || ' ' || (r ->> 'updated') FROM batchguard.restore_backup('$id') r}),
    '3 1', 'restore_backup restores format 1: 3 rows inserted, the SET NULL row updated');
is($node->safe_psql('postgres', q{
    SELECT (SELECT string_agg(x::text, ';' ORDER BY x.id) FROM fx_conv x) || ' / ' ||
           (SELECT string_agg(x::text, ';' ORDER BY x.id) FROM fx_msg x) || ' / ' ||
           (SELECT string_agg(x::text, ';' ORDER BY x.id) FROM fx_pin x)}),
    '(1,"first ""quoted"" ünï","{""k"": [1, 2.50]}",1.500,"2024-03-04 05:06:07.25+00","{a,""b c""}");'
      . '(2,second,,NaN,infinity,{}) / (10,1,"line' . "\n" . 'break",0.1);(11,1,"émoji 🎉",-1e+300);'
      . '(20,2,other,3) / (100,1,pinned);(200,2,kept)',
    'every row is back, the pinned row with its old reference');
# Restored again over the rows now there: the lookups of 'skip' and 'update' (the statement
# planned without nested loops: the tables are small).
is($node->safe_psql('postgres', qq{
    SELECT r ->> 'inserted' || ' ' || (r ->> 'skipped') || ' ' || (r ->> 'updated')
      FROM batchguard.restore_backup('$id', on_conflict => 'skip') r}),
    '0 3 1', "on_conflict 'skip' over the restored rows: 3 skipped, the SET NULL row updated");
$node->safe_psql('postgres', q{UPDATE fx_msg SET body = 'changed' WHERE id = 10});
is($node->safe_psql('postgres', qq{
    SELECT r ->> 'inserted' || ' ' || (r ->> 'updated')
      FROM batchguard.restore_backup('$id', on_conflict => 'update') r}),
    '0 4', "on_conflict 'update' over the restored rows: 4 updated");
is($node->safe_psql('postgres', 'SELECT body FROM fx_msg WHERE id = 10'),
    "line\nbreak", "on_conflict 'update' put the backed-up value back");
$node->stop;
done_testing();
