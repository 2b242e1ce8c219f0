#include "backup/retention.hpp"

#include "core/backup_file_name.hpp"
#include "core/error.hpp"
#include "pg/datum.hpp"
#include "pg/files.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"

extern "C" {
#include "storage/fd.h"
}

#include <sys/stat.h>

#include <cerrno>
#include <unordered_set>
#include <vector>

namespace batchguard::backup {

namespace {

pg::Statement count_expired{
    "SELECT pg_catalog.count(*) FROM batchguard.backups"
    " WHERE expires_at < pg_catalog.now() AND NOT legal_hold"
    "   AND ($1::text IS NULL OR owner = $1)",
    {TEXTOID}};

// Rows locked by someone else (a hold, an extension, a download) are left for next time.
pg::Statement delete_expired{
    "WITH doomed AS ("
    "  SELECT backup_id FROM batchguard.backups"
    "   WHERE expires_at < pg_catalog.now() AND NOT legal_hold"
    "     AND ($1::text IS NULL OR owner = $1)"
    "     FOR UPDATE SKIP LOCKED)"
    " DELETE FROM batchguard.backups AS b USING doomed AS d"
    "  WHERE b.backup_id = d.backup_id AND b.expires_at < pg_catalog.now() AND NOT b.legal_hold"
    " RETURNING b.backup_id::pg_catalog.text, b.creating_xid::pg_catalog.text::pg_catalog.int8,"
    "           b.owner, b.expires_at::pg_catalog.text",
    {TEXTOID}};

pg::Statement audit_expiry{
    "INSERT INTO batchguard.audit (backup_id, owner, actor, action, detail)"
    " VALUES ($1::pg_catalog.uuid, $2, $3, 'expire',"
    "         pg_catalog.jsonb_build_object('expires_at', $4::pg_catalog.text))",
    {TEXTOID, TEXTOID, TEXTOID, TEXTOID}};

pg::Statement rows_with_file{
    "SELECT backup_id::pg_catalog.text, creating_xid::pg_catalog.text::pg_catalog.int8, owner"
    "  FROM batchguard.backups WHERE status = 'ok' AND ($1::text IS NULL OR owner = $1)",
    {TEXTOID}};

// A row another transaction holds (a hold, an extension, a download) is left for a later
// round: maintenance never waits for a tenant's lock.
pg::Statement mark_missing{
    "WITH free AS (SELECT backup_id FROM batchguard.backups"
    "               WHERE backup_id = $1::pg_catalog.uuid AND status = 'ok'"
    "                 FOR UPDATE SKIP LOCKED)"
    " UPDATE batchguard.backups AS b SET status = 'missing' FROM free"
    "  WHERE b.backup_id = free.backup_id RETURNING 1",
    {TEXTOID}};

// One statement, one snapshot: its xmin and the rows it sees belong together. A file whose
// transaction is older than that xmin had finished when the snapshot was taken, so if it
// committed its row (unless since deleted) is among the rows.
pg::Statement sweep_state{
    "SELECT s.xmin, s.installed, b.key"
    "  FROM (SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())"
    "                   ::pg_catalog.text::pg_catalog.int8 AS xmin,"
    "               (SELECT pg_catalog.min(installed_xid::pg_catalog.text::pg_catalog.int8)"
    "                  FROM batchguard.installation) AS installed) AS s"
    "  LEFT JOIN (SELECT backup_id::pg_catalog.text OPERATOR(pg_catalog.||) '-'"
    "                    OPERATOR(pg_catalog.||) creating_xid::pg_catalog.text AS key"
    "               FROM batchguard.backups) AS b ON true",
    {}};

// Whether a backup file exists: a missing file (or folder) says no, any other failure
// (permissions) is an error, never taken for a missing file.
bool file_exists_strictly(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) return true;
    const int stat_errno = errno;
    if (stat_errno == ENOENT || stat_errno == ENOTDIR) return false;
    const std::string shown = pg::path_for_message(path);
    pg::pg_call([&] {
        errno = stat_errno;
        ereport(ERROR, (errcode_for_file_access(),
                        errmsg("could not check backup file \"%s\": %m", shown.c_str()),
                        errdetail_log("The file is \"%s\".", path.c_str()),
                        errhint("Check the permissions of batchguard.backup_directory.")));
    });
    return false;
}

}  // namespace

std::int64_t remove_expired_backups(pg::SpiSession& spi, const std::optional<std::string>& owner,
                                    const std::string& actor, bool dry_run) {
    const pg::Arg owner_arg = owner ? pg::Arg::text(*owner) : pg::Arg::null();
    if (dry_run) return spi.execute(count_expired, {owner_arg}).int8(0, 1).value();

    pg::Rows rows = spi.execute(delete_expired, {owner_arg});
    struct Removed {
        std::string backup_id, owner, expires_at;
        std::uint64_t xid;
    };
    std::vector<Removed> removed;
    removed.reserve(rows.size());
    for (std::uint64_t row = 0; row < rows.size(); ++row)
        removed.push_back({rows.text(row, 1).value(), rows.text(row, 3).value(),
                           rows.text(row, 4).value(),
                           static_cast<std::uint64_t>(rows.int8(row, 2).value())});
    for (const Removed& r : removed) {
        pg::check_for_interrupts();
        // The row is gone in this transaction; the file goes once it commits (and stays if
        // it aborts). A file that cannot be unlinked then is an orphan: swept later.
        pg::remove_backup_file_at_commit(pg::backup_file_path(r.backup_id, r.xid));
        spi.execute(audit_expiry, {pg::Arg::text(r.backup_id), pg::Arg::text(r.owner),
                                   pg::Arg::text(actor), pg::Arg::text(r.expires_at)});
    }
    return static_cast<std::int64_t>(removed.size());
}

std::int64_t mark_missing_files(pg::SpiSession& spi, const std::optional<std::string>& owner) {
    pg::Rows rows = spi.execute(rows_with_file, {owner ? pg::Arg::text(*owner) : pg::Arg::null()});
    struct Candidate {
        std::string backup_id, owner;
        std::uint64_t xid;
    };
    std::vector<Candidate> missing;
    for (std::uint64_t row = 0; row < rows.size(); ++row) {
        pg::check_for_interrupts();
        Candidate c{rows.text(row, 1).value(), rows.text(row, 3).value(),
                    static_cast<std::uint64_t>(rows.int8(row, 2).value())};
        if (!file_exists_strictly(pg::backup_file_path(c.backup_id, c.xid)))
            missing.push_back(std::move(c));
    }
    std::int64_t marked = 0;
    for (const Candidate& c : missing) {
        // A row deleted meanwhile (its file removed at that commit) is not marked.
        if (spi.execute(mark_missing, {pg::Arg::text(c.backup_id)}).empty()) continue;
        ++marked;
        const std::string path = pg::backup_file_path(c.backup_id, c.xid);
        const std::string shown = pg::path_for_message(path);
        pg::pg_call([&] {
            ereport(WARNING,
                    (errmsg("pg_batchguard: the file of backup %s (owner %s) is missing",
                            c.backup_id.c_str(), c.owner.c_str()),
                     errdetail("Expected \"%s\"; the row is now marked status 'missing'.",
                               shown.c_str()),
                     errdetail_log("Expected \"%s\"; the row is now marked status 'missing'.",
                                   path.c_str()),
                     errhint("Restore the file from a file-level copy, or delete the backup "
                             "with delete_backup().")));
        });
    }
    return marked;
}

SweepResult sweep_orphan_files(pg::SpiSession& spi) {
    SweepResult result;
    pg::Rows rows = spi.execute(sweep_state, {});
    const std::uint64_t xmin = static_cast<std::uint64_t>(rows.int8(0, 1).value());
    // Without an installation row (should not happen), nothing counts as ours.
    const std::uint64_t installed = static_cast<std::uint64_t>(rows.int8(0, 2).value_or(INT64_MAX));
    std::unordered_set<std::string> referenced;
    for (std::uint64_t row = 0; row < rows.size(); ++row)
        if (std::optional<std::string> key = rows.text(row, 3)) referenced.insert(std::move(*key));

    const std::string dir = pg::database_backup_directory();
    int open_errno = 0;
    DIR* d = pg::pg_call([&] {
        DIR* opened = AllocateDir(dir.c_str());
        open_errno = errno;
        return opened;
    });
    if (d == nullptr) {
        if (open_errno == ENOENT) return result;  // nothing exported here yet
        pg::pg_call([&] {
            errno = open_errno;
            ereport(ERROR, (errcode_for_file_access(),
                            errmsg("could not open backup directory \"%s\": %m", dir.c_str()),
                            errhint("Check the permissions of batchguard.backup_directory.")));
        });
    }
    std::vector<std::string> names;
    for (;;) {
        // ReadDir raises the error of a directory that could not be opened or read.
        struct dirent* entry = pg::pg_call([&] { return ReadDir(d, dir.c_str()); });
        if (entry == nullptr) break;
        names.emplace_back(entry->d_name);
    }
    pg::pg_call([&] { FreeDir(d); });

    for (const std::string& name : names) {
        pg::check_for_interrupts();
        const std::optional<BackupFileName> parsed = parse_backup_file_name(name);
        if (!parsed) continue;              // not ours: never touched
        if (parsed->xid >= xmin) continue;  // its transaction may still be running
        if (referenced.contains(parsed->backup_id + "-" + std::to_string(parsed->xid))) continue;
        if (parsed->xid < installed) {
            ++result.earlier_install;  // from before DROP EXTENSION: kept for an operator
            continue;
        }
        const std::string path = dir + "/" + name;
        const int unlink_errno = ::unlink(path.c_str()) == 0 ? 0 : errno;
        if (unlink_errno == 0 || unlink_errno == ENOENT) {
            ++result.removed;
            pg::pg_call([&] {
                ereport(LOG,
                        (errmsg("pg_batchguard: removed orphan backup file \"%s\"", path.c_str()),
                         errdetail("No backups row refers to it and the transaction that "
                                   "wrote it has ended.")));
            });
        } else {
            ++result.failed;
            pg::pg_call([&] {
                errno = unlink_errno;
                ereport(WARNING, (errcode_for_file_access(),
                                  errmsg("pg_batchguard: could not remove orphan backup file "
                                         "\"%s\": %m",
                                         path.c_str()),
                                  errdetail("It is retried in the next maintenance round.")));
            });
        }
    }
    return result;
}

}  // namespace batchguard::backup

using namespace batchguard;

// cleanup_expired_backups(dry_run): a superuser (the workers, pg_cron jobs of a superuser)
// cleans every owner's backups; anyone else their own.
BATCHGUARD_FUNCTION(batchguard_cleanup_expired_backups) {
    const std::optional<bool> dry_run = pg::bool_arg(fcinfo, 0);
    if (!dry_run) throw Error(sqlstate::kNullValueNotAllowed, "dry_run must not be NULL");
    const std::string actor = pg::current_owner();
    std::optional<std::string> owner;
    if (!superuser()) owner = actor;
    std::int64_t removed = 0;
    {
        pg::SpiSession spi;
        removed = backup::remove_expired_backups(spi, owner, actor, *dry_run);
    }
    if (removed > 0 && !*dry_run)
        pg::pg_call([&] {
            ereport(LOG, (errmsg("pg_batchguard: %lld expired backups removed (%s)",
                                 static_cast<long long>(removed),
                                 owner ? "the caller's own" : "all owners")));
        });
    return Int64GetDatum(removed);
}
