# Crash recovery of checkpoint & resume: a worker records items one transaction each
# (output row + complete_item together), then is killed with SIGKILL in the middle of an
# open transaction; later the whole server stops in immediate mode. After each restart
# only committed outcomes remain, filter_pending_items returns exactly the rest (in the
# caller's order), the progress counts are exact, and a resumed worker finishes the job
# with every output row written once.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $job = 'crash-job';
my $n_items = 100;
# The items in a fixed, non-sorted order (37 and 100 are coprime: a permutation), so
# that "in order" means the caller's order, not the sort order.
my @items = map { sprintf('template-%03d', ($_ * 37) % $n_items + 1) } 0 .. $n_items - 1;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
# The test framework turns both off; a crash test wants the real thing.
$node->append_conf('postgresql.conf', "fsync = on\nrestart_after_crash = on\n");
$node->start;

$node->safe_psql('postgres', qq{
    CREATE EXTENSION pg_batchguard;
    -- the job's output: one row per item, written in the item's transaction (no unique
    -- key: a duplicate would show)
    CREATE TABLE conversations (template_id text NOT NULL, body text NOT NULL);
    SELECT batchguard.save_checkpoint('$job', total_items => $n_items);
});

my $items_literal = "ARRAY['" . join("','", @items) . "']";

# One item the way a worker does it: output and checkpoint in one transaction.
sub complete_sql {
    my ($item) = @_;
    return "INSERT INTO conversations VALUES ('$item', 'conversation for $item');\n"
      . "SELECT batchguard.complete_item('$job', '$item', '{\"turns\": 4}');\n";
}

sub fail_sql {
    my ($item) = @_;
    return "SELECT batchguard.fail_item('$job', '$item', 'generation failed', '{\"code\": 500}');\n";
}

# What a resumed worker runs per item: it commits only when complete_item recorded the
# item, and rolls its output back when the item was already completed by someone else.
sub resume_sql {
    my ($item) = @_;
    return "BEGIN;\n"
      . "INSERT INTO conversations VALUES ('$item', 'conversation for $item');\n"
      . "SELECT batchguard.complete_item('$job', '$item') AS recorded \\gset\n"
      . "\\if :recorded\nCOMMIT;\n\\else\nROLLBACK;\n\\endif\n";
}

# Commits each item in its own transaction.
sub committed {
    my ($sql_of, @list) = @_;
    return join('', map { "BEGIN;\n" . $sql_of->($_) . "COMMIT;\n" } @list);
}

# Checks everything a resuming worker relies on, given the committed outcomes.
sub check_state {
    my ($label, $completed, $failed) = @_;
    my %done = map { $_ => 1 } @$completed, @$failed;
    my @rest = grep { !$done{$_} } @items;
    my $n_done = scalar(@$completed) + scalar(@$failed);

    is( $node->safe_psql('postgres', qq{
            SELECT array_to_string(batchguard.filter_pending_items('$job', $items_literal), ',')}),
        join(',', @rest),
        "$label: filter_pending_items returns exactly the pending items, in the given order");

    is( $node->safe_psql('postgres', qq{
            SELECT concat_ws(' ', status, total_items, completed, failed, pending, running, percentage)
              FROM batchguard.calculate_progress('$job')}),
        sprintf('running %d %d %d %d 0 %.2f', $n_items, scalar(@$completed), scalar(@$failed),
            $n_items - $n_done, 100 * $n_done / $n_items),
        "$label: calculate_progress counts committed outcomes only");

    is( $node->safe_psql('postgres', qq{
            SELECT concat_ws(' ', completed, failed, pending)
              FROM batchguard.batch_summary WHERE job_id = '$job'}),
        sprintf('%d %d %d', scalar(@$completed), scalar(@$failed), $n_items - $n_done),
        "$label: batch_summary agrees");

    # The output rows and the completed items are the same set.
    is( $node->safe_psql('postgres', qq{
            SELECT array_to_string(array_agg(template_id ORDER BY template_id), ',')
              FROM conversations}),
        join(',', sort @$completed),
        "$label: one output row per completed item, none for the others");
    is( $node->safe_psql('postgres', qq{
            SELECT array_to_string(array_agg(item_id ORDER BY item_id), ',')
              FROM batchguard.batch_items i JOIN batchguard.batches b USING (batch_id)
             WHERE b.job_id = '$job' AND i.status = 'completed'}),
        join(',', sort @$completed),
        "$label: the completed items are exactly the committed ones");
    is( $node->safe_psql('postgres', qq{
            SELECT array_to_string(array_agg(item_id || ':' || error || ':' || (error_detail ->> 'code')
                                             ORDER BY item_id), ',')
              FROM batchguard.batch_items i JOIN batchguard.batches b USING (batch_id)
             WHERE b.job_id = '$job' AND i.status = 'failed'}),
        join(',', map { "$_:generation failed:500" } sort @$failed),
        "$label: the failed items are exactly the committed ones, with their errors");
    return;
}

# --- 1. A worker is killed with SIGKILL in the middle of an open transaction.
my @completed = @items[0 .. 29];
my @failed = @items[30 .. 34];
my @in_flight = @items[35 .. 59];

my $worker = $node->background_psql('postgres');
$worker->query_safe(committed(\&complete_sql, @completed) . committed(\&fail_sql, @failed));
my $pid = $worker->query_safe('SELECT pg_backend_pid()');
$worker->query_safe("BEGIN;\n"
      . join('', map { complete_sql($_) } @in_flight[0 .. 23])
      . fail_sql($in_flight[24]));
is($worker->query_safe("SELECT batchguard.is_item_completed('$job', '$in_flight[0]')"),
    't', 'the worker sees its own uncommitted item as completed');

# Others do not; and a checkpoint writes the uncommitted rows to disk before the crash.
is($node->safe_psql('postgres', "SELECT state FROM pg_stat_activity WHERE pid = $pid"),
    'idle in transaction', 'the worker is inside its open transaction');
is($node->safe_psql('postgres', "SELECT batchguard.is_item_completed('$job', '$in_flight[0]')"),
    'f', 'another session does not see the uncommitted item');
$node->safe_psql('postgres', 'CHECKPOINT');

my $log_offset = -s $node->logfile;
ok(kill('KILL', $pid), "SIGKILL sent to the worker's backend (pid $pid)");
$node->wait_for_log(qr/server process \(PID $pid\) was terminated by signal 9/, $log_offset);
$node->wait_for_log(qr/database system is ready to accept connections/, $log_offset);
ok($node->poll_query_until('postgres', 'SELECT 1', '1'), 'the server restarted after the crash');
eval { $worker->quit };    # its connection is gone

check_state('after SIGKILL', \@completed, \@failed);

# --- 2. More committed work, another open transaction, then an immediate shutdown.
my @more = @items[35 .. 49];
$worker = $node->background_psql('postgres');
$worker->query_safe(committed(\&complete_sql, @more));
$worker->query_safe("BEGIN;\n" . join('', map { complete_sql($_) } @items[50 .. 59]));
push @completed, @more;

$node->stop('immediate');
$node->start;
eval { $worker->quit };

check_state('after immediate stop', \@completed, \@failed);

# --- 3. A restarted worker resumes from filter_pending_items and finishes the job. It
# rolls back an item whose complete_item returns false (the exactly-once rule).
my $pending = $node->safe_psql('postgres',
    "SELECT array_to_string(batchguard.filter_pending_items('$job', $items_literal), ' ')");
my @resume = split(' ', $pending);
is(scalar(@resume), $n_items - scalar(@completed) - scalar(@failed), 'the resumed worker gets the rest');

$node->safe_psql('postgres', join('', map { resume_sql($_) } @resume));
# Replaying an item that is already done: complete_item says false, the worker rolls back.
is( $node->safe_psql('postgres',
        "BEGIN;\nSELECT batchguard.complete_item('$job', '$resume[0]');\nROLLBACK;"),
    'f', 'complete_item of a completed item returns false');

is( $node->safe_psql('postgres', qq{
        SELECT concat_ws(' ', status, completed, failed, pending, percentage)
          FROM batchguard.calculate_progress('$job')}),
    sprintf('failed %d %d 0 100.00', $n_items - scalar(@failed), scalar(@failed)),
    'every item processed: the batch is failed because some items failed');
is( $node->safe_psql('postgres', qq{
        SELECT count(*) || ' ' || count(DISTINCT template_id) FROM conversations}),
    sprintf('%d %d', $n_items - scalar(@failed), $n_items - scalar(@failed)),
    'one output row per completed item, no duplicates');

# The failed items are retried and completed: the job is done.
is($node->safe_psql('postgres', "SELECT batchguard.retry_failed('$job')"),
    scalar(@failed), 'retry_failed makes the failed items pending again');
$node->safe_psql('postgres', committed(\&complete_sql, @failed));
is( $node->safe_psql('postgres', qq{
        SELECT concat_ws(' ', status, completed, failed, pending, percentage)
          FROM batchguard.calculate_progress('$job')}),
    "completed $n_items 0 0 100.00", 'the job is complete');
is( $node->safe_psql('postgres', qq{
        SELECT count(*) FROM conversations c
          FULL JOIN (SELECT unnest($items_literal) AS template_id) i USING (template_id)
         WHERE c.body IS NULL OR i.template_id IS NULL}),
    '0', 'each item has its output row: none lost, none extra');
is($node->safe_psql('postgres', "SELECT array_length(batchguard.filter_pending_items('$job', $items_literal), 1)"),
    '', 'nothing is pending');

$node->stop;
done_testing();
