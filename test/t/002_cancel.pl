# Cancelling long checkpoint calls: statement_timeout and pg_cancel_backend interrupt
# them with SQLSTATE 57014 from inside the call (the error's context names the job),
# nothing they would have changed remains, and the same connection keeps working: the
# PostgreSQL-call wrapper unwound the C++ frames, gave SPI and the user id back, and
# re-raised the original error. Runs as an unprivileged role, so a wrapper that failed
# to restore the caller's identity would show.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# The most items a call accepts (docs/api.md): a call over them takes about a second or more.
my $n_items = 1_000_000;

my $node = PostgreSQL::Test::Cluster->new('cancel');
$node->init;
$node->start;

$node->safe_psql('postgres', qq{
    CREATE EXTENSION pg_batchguard;
    CREATE ROLE alice LOGIN;
    -- One array of $n_items item ids, read from a table so that building it is not
    -- part of the calls under test.
    CREATE TABLE big AS SELECT array_agg('item-' || g) AS items FROM generate_series(1, $n_items) g;
    GRANT SELECT ON big TO alice;
});

# alice's session: errors do not stop it, every call below runs on this one connection.
my $s = $node->background_psql('postgres', on_error_stop => 0, extra_params => [ '-U', 'alice' ]);
my $pid = $s->query_safe('SELECT pg_backend_pid()');
$s->query_safe("SELECT batchguard.save_checkpoint('job', ARRAY['a', 'b', 'c'], total_items => 10)");

# Runs SQL that must fail; returns its SQLSTATE and stderr, and clears stderr. The error's
# CONTEXT ends with our job line when it was raised inside the call (an error inside
# SPI also names the statement first).
sub failing {
    my ($sql) = @_;
    $s->{stderr} = '';
    # (An empty statement would reset :SQLSTATE: after a call already sent, only echo it.)
    my $out = $s->query(($sql eq '' ? '' : "$sql;\n") . "\\echo :SQLSTATE");
    my $err = $s->{stderr};
    $s->{stderr} = '';
    return ($out, $err);
}

# What must hold after every cancellation: same backend, same user, calls work, and
# the job holds exactly the items it is expected to hold.
sub still_works {
    my ($label, $completed) = @_;
    is($s->query_safe('SELECT pg_backend_pid()'), $pid, "$label: same connection");
    is($s->query_safe('SELECT current_user'), 'alice', "$label: the caller's identity is back");
    is( $s->query_safe(q{
            SELECT concat_ws(' ', completed, failed, pending)
              FROM batchguard.calculate_progress('job')}),
        "$completed 0 " . (10 - $completed),
        "$label: nothing of the cancelled call was recorded");
    is( $s->query_safe(q{
            SELECT array_to_string(batchguard.filter_pending_items('job', ARRAY['c', 'x', 'y']), ',')}),
        'x,y', "$label: filter_pending_items works");
    return;
}

# --- statement_timeout while filter_pending_items loops over millions of items.
my ($state, $err) = failing(q{
    SET statement_timeout = '100ms';
    SELECT cardinality(batchguard.filter_pending_items('new-job', items)) FROM big});
is($state, '57014', 'statement_timeout cancels filter_pending_items: SQLSTATE 57014');
like($err, qr/ERROR:  canceling statement due to statement timeout\nCONTEXT: .*pg_batchguard job "new-job"/s,
    '... raised inside the call');
$s->query_safe('RESET statement_timeout');
still_works('after statement_timeout', 3);

# A timeout in the middle of the call (half its uninterrupted duration), past the
# argument checks: the de-duplication and result loops check for interrupts too.
my ($cardinality, $ms) = split(/\|/, $s->query_safe(q{
    SELECT cardinality(batchguard.filter_pending_items('new-job', items)),
           round(1000 * extract(epoch FROM clock_timestamp() - statement_timestamp()))
      FROM big}));
is($cardinality, $n_items, 'uninterrupted, filter_pending_items returns every item');
($state, $err) = failing(sprintf(q{
    SET statement_timeout = %d;
    SELECT cardinality(batchguard.filter_pending_items('new-job', items)) FROM big}, $ms / 2));
is($state, '57014', 'a timeout in the middle of the call: SQLSTATE 57014');
# (Where it lands depends on the machine: the last phases — de-duplication and building the
# result — take milliseconds, so the timeout may be noticed just after the call returns.)
note($err);
$s->query_safe('RESET statement_timeout');
still_works('after a timeout in the middle', 3);

# --- pg_cancel_backend while save_checkpoint records a million items.
# Cancelled once it has begun to write (its transaction has an id): inside the call,
# whatever the machine's speed.
$s->{stdin} .= "SELECT (batchguard.save_checkpoint('job', items[4:1000000])).completed FROM big;\n";
$s->{run}->pump_nb while length $s->{stdin};
ok( $node->poll_query_until('postgres', qq{
        SELECT count(*) FROM pg_stat_activity
         WHERE pid = $pid AND state = 'active' AND query LIKE '%save_checkpoint%'
           AND backend_xid IS NOT NULL}, '1'),
    'save_checkpoint is writing');
is($node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)"), 't', 'pg_cancel_backend sent');
($state, $err) = failing('');
is($state, '57014', 'pg_cancel_backend cancels save_checkpoint: SQLSTATE 57014');
like($err, qr/ERROR:  canceling statement due to user request\nCONTEXT: .*pg_batchguard job "job"/s,
    '... raised inside the call');
still_works('after pg_cancel_backend', 3);

# --- A cancel while waiting for the job lock (raised inside a wrapped LockAcquire): a
# cleanup_checkpoint of the job holds the lock in another, open transaction.
my $cleaner = $node->background_psql('postgres', extra_params => [ '-U', 'alice' ]);
$cleaner->query_safe("BEGIN; SELECT batchguard.cleanup_checkpoint('job')");
($state, $err) = failing(q{
    SET statement_timeout = '300ms';
    SELECT batchguard.complete_item('job', 'd')});
is($state, '57014', 'statement_timeout cancels complete_item waiting for the job lock');
like($err, qr/ERROR:  canceling statement due to statement timeout\nCONTEXT: .*pg_batchguard job "job"/s,
    '... raised inside the call');
$s->query_safe('RESET statement_timeout');

$s->{stdin} .= "SELECT batchguard.complete_item('job', 'd');\n";
$s->{run}->pump_nb while length $s->{stdin};
ok( $node->poll_query_until('postgres', qq{
        SELECT count(*) FROM pg_stat_activity WHERE pid = $pid AND wait_event_type = 'Lock'}, '1'),
    'complete_item waits for the job lock');
is($node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)"), 't', 'pg_cancel_backend sent');
($state, $err) = failing('');
is($state, '57014', 'pg_cancel_backend cancels the lock wait: SQLSTATE 57014');
like($err, qr/ERROR:  canceling statement due to user request\nCONTEXT: .*pg_batchguard job "job"/s,
    '... raised inside the call');
$cleaner->query_safe('ROLLBACK');
$cleaner->quit;
still_works('after cancelled lock waits', 3);

# --- Inside a transaction: a cancelled call under a savepoint is rolled back to it, and
# the transaction goes on and commits what it recorded before and after.
$s->query_safe(q{
    BEGIN;
    SELECT batchguard.complete_item('job', 'd');
    SAVEPOINT before_long_call;
    SET LOCAL statement_timeout = '100ms'});
($state, $err) = failing(q{SELECT (batchguard.save_checkpoint('job', items[4:1000000])).completed FROM big});
is($state, '57014', 'cancelled inside a savepoint');
$s->query_safe(q{
    ROLLBACK TO SAVEPOINT before_long_call;
    RESET statement_timeout;
    SELECT batchguard.complete_item('job', 'e');
    COMMIT});
is( $s->query_safe(q{
        SELECT array_to_string(array_agg(item_id ORDER BY item_id), ',')
          FROM batchguard.batch_items i JOIN batchguard.batches b USING (batch_id)
         WHERE b.job_id = 'job'}),
    'a,b,c,d,e', 'the transaction kept the items recorded around the cancelled call');
still_works('after a cancel under a savepoint', 5);

$s->quit;
$node->stop;
done_testing();
