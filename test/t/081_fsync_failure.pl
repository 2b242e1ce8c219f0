# A backup file whose fsync fails (an NFS or quota-limited backup directory) fails the
# export with a plain ERROR: no PANIC, so a role allowed to export cannot restart the
# cluster, and nothing of the export remains. The failure is injected with a small
# LD_PRELOAD library that makes fsync() of backup files fail with EIO.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $tmp = PostgreSQL::Test::Utils::tempdir();
open(my $c, '>', "$tmp/failing_fsync.c") or die;
print $c <<'C';
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* fsync() of a backup file (*.jsonl.zst) fails with EIO; everything else is synced. */
int fsync(int fd) {
    static int (*real_fsync)(int);
    char link[64], path[4096];
    ssize_t n;
    if (real_fsync == NULL) real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink(link, path, sizeof path - 1);
    if (n > 0) {
        path[n] = '\0';
        if (strstr(path, ".jsonl.zst") != NULL) {
            errno = EIO;
            return -1;
        }
    }
    return real_fsync(fd);
}
C
close($c);
system('cc', '-shared', '-fPIC', '-o', "$tmp/failing_fsync.so", "$tmp/failing_fsync.c", '-ldl') == 0
  or BAIL_OUT('cannot build the fsync shim');

my $node = PostgreSQL::Test::Cluster->new('fsync');
$node->init;
# file storage: the backups this test makes are files (the default stores them in the database)
$node->append_conf('postgresql.conf', "fsync = on\nbatchguard.backup_storage = 'file'\n");
{
    local $ENV{LD_PRELOAD} = "$tmp/failing_fsync.so";
    $node->start;
}
$node->safe_psql('postgres', q{
CREATE EXTENSION pg_batchguard;
CREATE TABLE t (id bigint PRIMARY KEY, body text);
INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 100) g;
});
my $pid = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

my ($ret, $out, $err) = $node->psql('postgres', "SELECT batchguard.export_backup('t')");
isnt($ret, 0, 'the export fails');
like($err, qr/ERROR:  could not fsync backup file ".*": Input\/output error/,
    'with a plain ERROR naming the file');
unlike($err, qr/PANIC|server closed the connection/, 'not a PANIC');
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $pid,
    'the server did not restart');
is($node->safe_psql('postgres', 'SELECT count(*) FROM batchguard.backups'), '0',
    'no backup row');
my $dboid = $node->safe_psql('postgres',
    "SELECT oid FROM pg_database WHERE datname = current_database()");
opendir(my $d, $node->data_dir . "/pg_batchguard/$dboid") or die "opendir: $!";
is(scalar(grep { /\.jsonl\.zst$/ } readdir($d)), 0, 'and no file left');

$node->stop;
done_testing();
