# Protected tables (issue 17) survive ALTER EXTENSION ... UPDATE and pg_dump / pg_restore:
# a database created at 1.0 and updated gets protect_table and its event trigger; a table
# protected there, dumped with pg_dump -Fc and restored into a new database (new oids), is
# still protected: a plain DELETE makes a backup that restores, TRUNCATE and DROP TABLE are
# refused, protected_tables lists it with its retention and covered child.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('protect_dump');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('app', q{
CREATE EXTENSION pg_batchguard VERSION '1.0';
CREATE TABLE posts (id int PRIMARY KEY, body text);
CREATE TABLE comments (id int PRIMARY KEY, post_id int REFERENCES posts ON DELETE CASCADE, body text);
INSERT INTO posts SELECT g, 'post ' || g FROM generate_series(1, 30) g;
INSERT INTO comments SELECT g, 1 + g % 30, 'comment ' || g FROM generate_series(1, 90) g;
});
$node->safe_psql('app', 'ALTER EXTENSION pg_batchguard UPDATE');
is($node->safe_psql('app', q{SELECT extversion FROM pg_extension WHERE extname = 'pg_batchguard'}),
    '1.1', 'updated from 1.0');
is($node->safe_psql('app', q{SELECT count(*) FROM pg_event_trigger WHERE evtname = 'batchguard_protected_drop'}),
    '1', 'the update created the event trigger');
$node->safe_psql('app', q{SELECT batchguard.protect_table('posts', retention => '3 days')});

sub error_of {
    my ($n, $db, $sql) = @_;
    my ($ret, $out, $err) = $n->psql($db, "\\set VERBOSITY terse\nSET client_min_messages = warning;\n$sql");
    $err =~ s/\n.*//s;
    return $ret == 0 ? 'ok' : $err;
}

sub protected_everywhere {
    my ($db, $what) = @_;
    is($node->safe_psql($db, q{SELECT table_name || ' ' || retention || ' ' || covered_tables::text
                                  FROM batchguard.protected_tables}),
        'posts 3 days {comments}', "$what: protected_tables lists the table, its retention and its child");
    my $before = $node->safe_psql($db, 'SELECT count(*) FROM batchguard.backups');
    my $id = $node->safe_psql($db, q{
        BEGIN;
        DELETE FROM posts WHERE id IN (1, 2);
        SELECT batchguard.last_backup_id();
        COMMIT;});
    is($node->safe_psql($db, 'SELECT count(*) FROM batchguard.backups'), $before + 1,
        "$what: a plain DELETE made one backup");
    is($node->safe_psql($db, qq{SELECT row_counts::text || ' ' || (expires_at - created_at)::text
                                  FROM batchguard.backups WHERE backup_id = '$id'}),
        '{"public.posts": 2, "public.comments": 6} 3 days', "$what: with the posts, their comments and the retention");
    is($node->safe_psql($db, qq{SELECT batchguard.restore_backup('$id') ->> 'inserted'}), '8',
        "$what: the backup restores");
    is($node->safe_psql($db, 'SELECT count(*) FROM posts') . ' ' . $node->safe_psql($db, 'SELECT count(*) FROM comments'),
        '30 90', "$what: every row is back");
    like(error_of($node, $db, 'TRUNCATE comments'), qr/ERROR:  cannot truncate protected table public\.comments$/,
        "$what: TRUNCATE is refused");
    like(error_of($node, $db, 'DROP TABLE posts CASCADE'), qr/ERROR:  cannot drop protected table public\.posts$/,
        "$what: DROP TABLE is refused");
}

protected_everywhere('app', 'updated from 1.0');

my $dump = $node->basedir . '/app.dump';
$node->command_ok(['pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('app')], 'pg_dump -Fc');
$node->safe_psql('postgres', 'CREATE DATABASE app2');
$node->command_ok(['pg_restore', '--exit-on-error', '-d', $node->connstr('app2'), $dump],
    'pg_restore into a new database');
isnt($node->safe_psql('app2', q{SELECT 'posts'::regclass::oid}), $node->safe_psql('app', q{SELECT 'posts'::regclass::oid}),
    'the restored table has a new oid');
protected_everywhere('app2', 'restored with pg_restore');

# plain format through psql too
my $plain = $node->basedir . '/app.sql';
$node->command_ok(['pg_dump', '-f', $plain, '-d', $node->connstr('app')], 'pg_dump (plain)');
$node->safe_psql('postgres', 'CREATE DATABASE app3');
$node->command_ok(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', $plain, '-d', $node->connstr('app3')],
    'the plain dump restored with psql');
protected_everywhere('app3', 'restored from a plain dump');

is($node->safe_psql('app2', q{SELECT batchguard.unprotect_table('posts')}), 't', 'unprotect in the restored database');
is($node->safe_psql('app2', q{SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'batchguard%'}), '0',
    'its triggers are gone');

$node->stop;
done_testing();
