# The purge of finished batches (run_maintenance and the maintenance workers, with
# batchguard.finished_batch_retention) reads every batch first and handles them one after
# the other: a batch resumed by a transaction that commits while the purge is busy with an
# earlier batch is no longer finished when its turn comes, and must be kept. (A batch
# whose job lock is held when its turn comes is skipped, counted as batches_left_locked.)
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('purge_race');
$node->init;
# No maintenance worker here (the library is not preloaded): run_maintenance() is the
# only purge, and it purges every finished batch at once.
$node->append_conf('postgresql.conf', "batchguard.finished_batch_retention = 0\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_batchguard');

sub batch_of {    # "status total" of a job, or "gone"
    my ($job) = @_;
    my $row = $node->safe_psql('postgres', qq{
        SELECT p.status || ' ' || p.total_items FROM batchguard.calculate_progress('$job') p
         WHERE p.job_id IS NOT NULL});
    return $row eq '' ? 'gone' : $row;
}

# Two finished batches, in this order in the table (the purge reads them in that order):
# 'first' completed, 'resumed' cancelled.
$node->safe_psql('postgres', q{SELECT batchguard.save_checkpoint('first', ARRAY['a'], '[]', 1)});
$node->safe_psql('postgres', q{
    SELECT batchguard.start_batch('resumed', ARRAY['a']);
    SELECT batchguard.cancel_batch('resumed');});
is(batch_of('first') . ', ' . batch_of('resumed'), 'completed 1, cancelled 1', 'both batches are finished');

# A transaction holds the row of 'first': the purge, which read both batches as finished,
# waits there.
my $holder = $node->background_psql('postgres');
my $purger = $node->background_psql('postgres');
$holder->query_safe(q{BEGIN; SELECT 1 FROM batchguard.batches WHERE job_id = 'first' FOR UPDATE});
my $purger_pid = $purger->query_safe('SELECT pg_backend_pid()');
$purger->query_until(qr/purging/,
    "\\echo purging\nSELECT 'purged=' || (batchguard.run_maintenance()->>'purged_batches');\n");
ok( $node->poll_query_until('postgres', qq{
        SELECT count(*) = 1 FROM pg_locks WHERE pid = $purger_pid AND NOT granted}),
    'the purge waits for the row of the first batch');

# Meanwhile the second batch is resumed and committed.
$node->safe_psql('postgres', q{SELECT batchguard.resume_batch('resumed')});
is(batch_of('resumed'), 'running 1', 'the second batch is resumed');

$holder->query_safe('COMMIT');
like($purger->query_until(qr/purged=\d+/, ''), qr/purged=1/, 'the purge removed one batch');
is(batch_of('first'), 'gone', 'the first batch, finished, is gone');
is(batch_of('resumed'), 'running 1', 'the resumed batch is kept');

# Once finished again, the same purge removes it.
$node->safe_psql('postgres', q{SELECT batchguard.cancel_batch('resumed')});
is($node->safe_psql('postgres', q{SELECT batchguard.run_maintenance()->>'purged_batches'}), '1',
    'finished again, it is purged');
is(batch_of('resumed'), 'gone', 'the second batch is gone');

$holder->quit;
$purger->quit;
$node->stop;
done_testing();
