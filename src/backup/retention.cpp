#include "backup/retention.hpp"

#include "backup/folders.hpp"
#include "backup/storage.hpp"
#include "backup/store.hpp"
#include "core/backup_file_name.hpp"
#include "core/error.hpp"
#include "pg/datum.hpp"
#include "pg/files.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"
#include "pg/instance.hpp"

extern "C" {
#include "access/xlog.h"
}

#include <dirent.h>

#include <cerrno>
#include <cstring>
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
#define DELETE_EXPIRED                                                                           \
    "WITH doomed AS ("                                                                           \
    "  SELECT backup_id FROM batchguard.backups"                                                 \
    "   WHERE expires_at < pg_catalog.now() AND NOT legal_hold"                                  \
    "     AND ($1::text IS NULL OR owner = $1)"                                                  \
    "     FOR UPDATE SKIP LOCKED)"                                                               \
    " DELETE FROM batchguard.backups AS b USING doomed AS d"                                     \
    "  WHERE b.backup_id = d.backup_id AND b.expires_at < pg_catalog.now() AND NOT b.legal_hold" \
    " RETURNING b.backup_id::pg_catalog.text, b.creating_xid::pg_catalog.text::pg_catalog.int8," \
    "           b.owner, b.expires_at::pg_catalog.text"
pg::Statement delete_expired{DELETE_EXPIRED ", b.storage, b.file_folder, b.file_cluster",
                             {TEXTOID}};
pg::Statement delete_expired_1_0{DELETE_EXPIRED, {TEXTOID}};
#undef DELETE_EXPIRED

pg::Statement audit_expiry{
    "INSERT INTO batchguard.audit (backup_id, owner, actor, action, detail)"
    " VALUES ($1::pg_catalog.uuid, $2, $3, 'expire',"
    "         pg_catalog.jsonb_build_object('expires_at', $4::pg_catalog.text))",
    {TEXTOID, TEXTOID, TEXTOID, TEXTOID}};

pg::Statement file_rows{
    "SELECT backup_id::pg_catalog.text, creating_xid::pg_catalog.text::pg_catalog.int8, owner,"
    "       status, file_folder, file_cluster"
    "  FROM batchguard.backups WHERE storage = 'file' AND ($1::text IS NULL OR owner = $1)",
    {TEXTOID}};
pg::Statement file_rows_1_0{
    "SELECT backup_id::pg_catalog.text, creating_xid::pg_catalog.text::pg_catalog.int8, owner,"
    "       status"
    "  FROM batchguard.backups WHERE status IN ('ok', 'missing')"
    "   AND ($1::text IS NULL OR owner = $1)",
    {TEXTOID}};

// A row another transaction holds (a hold, an extension, a download) is left for a later
// round: maintenance never waits for a tenant's lock.
pg::Statement set_status{
    "WITH free AS (SELECT backup_id FROM batchguard.backups"
    "               WHERE backup_id = $1::pg_catalog.uuid AND status = $2"
    "                 FOR UPDATE SKIP LOCKED)"
    " UPDATE batchguard.backups AS b SET status = $3 FROM free"
    "  WHERE b.backup_id = free.backup_id RETURNING 1",
    {TEXTOID, TEXTOID, TEXTOID}};

// One statement, one snapshot: its xmin and the rows it sees belong together. A file whose
// transaction is older than that xmin had finished when the snapshot was taken, so if it
// committed its row (unless since deleted) is among the rows. Keys: "<folder>/<id>-<xid>".
#define SWEEP_STATE(key, where)                                                              \
    "SELECT s.xmin, s.installed, b.key"                                                      \
    "  FROM (SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())"           \
    "                   ::pg_catalog.text::pg_catalog.int8 AS xmin,"                         \
    "               (SELECT pg_catalog.min(installed_xid::pg_catalog.text::pg_catalog.int8)" \
    "                  FROM batchguard.installation) AS installed) AS s"                     \
    "  LEFT JOIN (SELECT " key " AS key FROM batchguard.backups " where ") AS b ON true"
#define FILE_KEY(folder)                                                                  \
    folder                                                                                \
        " OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) backup_id::pg_catalog.text" \
        " OPERATOR(pg_catalog.||) '-' OPERATOR(pg_catalog.||) creating_xid::pg_catalog.text"
pg::Statement sweep_state{SWEEP_STATE(FILE_KEY("file_folder"), "WHERE storage = 'file'"), {}};
// 1.0: every file is in the database's own folder, $1.
pg::Statement sweep_state_1_0{SWEEP_STATE(FILE_KEY("$1::pg_catalog.text"), ""), {TEXTOID}};
pg::Statement held_files{"SELECT " FILE_KEY("file_folder") " FROM batchguard.backups"
                         " WHERE storage = 'file' AND legal_hold",
                         {}};
pg::Statement held_files_1_0{"SELECT " FILE_KEY("$1::pg_catalog.text") " FROM batchguard.backups"
                             " WHERE legal_hold",
                             {TEXTOID}};
#undef SWEEP_STATE
#undef FILE_KEY

// pg_upgrade: the rows of an adopted folder now belong to this cluster's system.
pg::Statement rehome_rows{
    "UPDATE batchguard.backups SET file_cluster = $2"
    " WHERE storage = 'file' AND file_folder = $1 AND file_cluster = $3",
    {TEXTOID, INT8OID, INT8OID}};

BackupRecord file_record(std::string backup_id, std::uint64_t xid, std::string owner) {
    BackupRecord r;
    r.backup_id = std::move(backup_id);
    r.creating_xid = xid;
    r.owner = std::move(owner);
    r.storage = Storage::kFile;
    r.file_folder = std::to_string(MyDatabaseId);  // 1.0; replaced from the row in 1.1
    r.file_cluster = pg::system_identifier();
    return r;
}

void log_status_change(const BackupRecord& r, const char* status, const AvailabilityCheck& check) {
    const std::string& detail = check.detail;
    // The server log gets the whole path, the caller (maybe an ordinary role) the shown one.
    const std::string& detail_log = check.detail_log.empty() ? detail : check.detail_log;
    pg::pg_call([&] {
        if (strcmp(status, "missing") == 0)
            ereport(
                WARNING,
                (errmsg("pg_batchguard: the file of backup %s (owner %s) is missing",
                        r.backup_id.c_str(), r.owner.c_str()),
                 errdetail("%s The row is now marked status 'missing'.", detail.c_str()),
                 errdetail_log("%s The row is now marked status 'missing'.", detail_log.c_str()),
                 errhint("Restore the file from a file-level copy (the next round finds it "
                         "again), or delete the backup with delete_backup().")));
        else if (strcmp(status, "unreadable") == 0)
            ereport(
                WARNING,
                (errmsg("pg_batchguard: the file of backup %s (owner %s) cannot be read",
                        r.backup_id.c_str(), r.owner.c_str()),
                 errdetail("%s The row is now marked status 'unreadable'.", detail.c_str()),
                 errdetail_log("%s The row is now marked status 'unreadable'.", detail_log.c_str()),
                 errhint("Check the permissions of batchguard.backup_directory and its "
                         "folders; the next round finds it again.")));
        else if (strcmp(status, "detached") == 0)
            ereport(LOG, (errmsg("pg_batchguard: backup %s (owner %s) is detached from its file",
                                 r.backup_id.c_str(), r.owner.c_str()),
                          errdetail("%s", detail.c_str()),
                          errhint("A superuser re-attaches restored file backups with "
                                  "SELECT batchguard.attach_backup_files().")));
        else
            ereport(LOG, (errmsg("pg_batchguard: the file of backup %s (owner %s) is there again",
                                 r.backup_id.c_str(), r.owner.c_str()),
                          errdetail("The row is now marked status 'ok'.")));
    });
}

// The orphans of one folder this server owns go to its quarantine.
void sweep_folder(const Folder& folder, const std::unordered_set<std::string>& referenced,
                  std::uint64_t xmin, std::uint64_t installed, SweepResult& result) {
    DIR* d = ::opendir(folder.path.c_str());
    if (d == nullptr) {
        const int err = errno;
        if (err == ENOENT) return;
        pg::pg_call([&] {
            errno = err;
            ereport(WARNING, (errcode_for_file_access(),
                              errmsg("pg_batchguard: could not open backup folder \"%s\": %m",
                                     folder.path.c_str()),
                              errdetail("Its orphans are swept once it can be read again.")));
        });
        return;
    }
    std::vector<std::string> names;
    while (struct dirent* entry = ::readdir(d)) names.emplace_back(entry->d_name);
    ::closedir(d);
    for (const std::string& name : names) {
        pg::check_for_interrupts();
        const std::optional<BackupFileName> parsed = parse_backup_file_name(name);
        if (!parsed) continue;              // not ours: never touched
        if (parsed->xid >= xmin) continue;  // its transaction may still be running
        if (referenced.contains(folder.name + "/" + parsed->backup_id + "-" +
                                std::to_string(parsed->xid)))
            continue;
        if (parsed->xid < installed) {
            ++result.earlier_install;  // from before DROP EXTENSION: kept for an operator
            continue;
        }
        const std::string path = folder.path + "/" + name;
        const int err = quarantine_file(folder.path, name);
        if (err == 0) {
            ++result.quarantined;
            pg::pg_call([&] {
                ereport(LOG, (errmsg("pg_batchguard: moved orphan backup file \"%s\" to quarantine",
                                     path.c_str()),
                              errdetail(
                                  "No backups row refers to it and the transaction that wrote it "
                                  "has ended. It is deleted after batchguard.quarantine_period.")));
            });
        } else if (err != ENOENT) {
            ++result.failed;
            pg::pg_call([&] {
                errno = err;
                ereport(WARNING, (errcode_for_file_access(),
                                  errmsg("pg_batchguard: could not move orphan backup file "
                                         "\"%s\" to quarantine: %m",
                                         path.c_str()),
                                  errdetail("It is retried in the next maintenance round.")));
            });
        }
    }
}

// The hold markers of one folder follow the rows: one per held backup, none other.
void sync_hold_markers(const Folder& folder, const std::unordered_set<std::string>& held) {
    std::unordered_set<std::string> present;
    if (DIR* d = ::opendir(folder.path.c_str())) {
        while (struct dirent* entry = ::readdir(d)) {
            const std::string_view name(entry->d_name);
            if (!name.ends_with(kHoldSuffix)) continue;
            const std::string stem(name.substr(0, name.size() - kHoldSuffix.size()));
            if (parse_backup_file_name(stem + ".jsonl.zst")) present.insert(stem);
        }
        ::closedir(d);
    }
    const std::string prefix = folder.name + "/";
    for (const std::string& key : held) {
        if (!key.starts_with(prefix)) continue;
        const std::string stem = key.substr(prefix.size());
        if (!present.contains(stem)) write_hold_marker(folder.path, stem);
    }
    for (const std::string& stem : present)
        if (!held.contains(prefix + stem)) remove_hold_marker(folder.path, stem);
}

}  // namespace

std::int64_t remove_expired_backups(pg::SpiSession& spi, const std::optional<std::string>& owner,
                                    const std::string& actor, bool dry_run) {
    const pg::Arg owner_arg = owner ? pg::Arg::text(*owner) : pg::Arg::null();
    if (dry_run) return spi.execute(count_expired, {owner_arg}).int8(0, 1).value();

    const bool with_storage = storage_columns_installed();
    pg::Rows rows = spi.execute(with_storage ? delete_expired : delete_expired_1_0, {owner_arg});
    struct Removed {
        BackupRecord record;
        std::string expires_at;
    };
    std::vector<Removed> removed;
    removed.reserve(rows.size());
    for (std::uint64_t row = 0; row < rows.size(); ++row) {
        Removed r{file_record(rows.text(row, 1).value(),
                              static_cast<std::uint64_t>(rows.int8(row, 2).value()),
                              rows.text(row, 3).value()),
                  rows.text(row, 4).value()};
        if (with_storage) {
            if (rows.text(row, 5).value() == "database") r.record.storage = Storage::kDatabase;
            r.record.file_folder = rows.text(row, 6).value_or("");
            r.record.file_cluster = static_cast<std::uint64_t>(rows.int8(row, 7).value_or(0));
        }
        removed.push_back(std::move(r));
    }
    FolderView folders(with_storage ? installation_token(spi) : std::string());
    for (const Removed& r : removed) {
        pg::check_for_interrupts();
        // The row is gone in this transaction; the file goes once that has committed durably
        // (and stays if it aborts), if it is this server's. A file that cannot be unlinked
        // then is an orphan: quarantined later. Chunks go with the row.
        if (owns_file(r.record, folders)) pg::remove_backup_file_at_commit(r.record.path());
        spi.execute(audit_expiry, {pg::Arg::text(r.record.backup_id), pg::Arg::text(r.record.owner),
                                   pg::Arg::text(actor), pg::Arg::text(r.expires_at)});
    }
    return static_cast<std::int64_t>(removed.size());
}

FileStatusCounts check_backup_files(pg::SpiSession& spi, const std::optional<std::string>& owner) {
    FileStatusCounts counts;
    const bool with_storage = storage_columns_installed();
    const pg::Arg owner_arg = owner ? pg::Arg::text(*owner) : pg::Arg::null();
    pg::Rows rows = spi.execute(with_storage ? file_rows : file_rows_1_0, {owner_arg});
    struct Candidate {
        BackupRecord record;
        std::string status;
    };
    std::vector<Candidate> candidates;
    candidates.reserve(rows.size());
    for (std::uint64_t row = 0; row < rows.size(); ++row) {
        Candidate c{file_record(rows.text(row, 1).value(),
                                static_cast<std::uint64_t>(rows.int8(row, 2).value()),
                                rows.text(row, 3).value()),
                    rows.text(row, 4).value()};
        if (with_storage) {
            c.record.file_folder = rows.text(row, 5).value_or("");
            c.record.file_cluster = static_cast<std::uint64_t>(rows.int8(row, 6).value_or(0));
        }
        candidates.push_back(std::move(c));
    }
    FolderView folders(with_storage ? installation_token(spi) : std::string());
    for (const Candidate& c : candidates) {
        pg::check_for_interrupts();
        const AvailabilityCheck check = check_availability(c.record, folders);
        const char* status = availability_status(check.availability);
        // Missing is said only where this server owns the folder: a copy of the cluster does
        // not have its source's newer files, and they are not missing there.
        if (check.availability == Availability::kMissing && !owns_file(c.record, folders)) continue;
        // A 1.0 table knows ok and missing only.
        if (!with_storage && check.availability != Availability::kMissing &&
            check.availability != Availability::kOk)
            continue;
        if (c.status == status || c.status == "expired") continue;
        if (spi.execute(set_status, {pg::Arg::text(c.record.backup_id), pg::Arg::text(c.status),
                                     pg::Arg::text(status)})
                .empty())
            continue;  // deleted or changed meanwhile
        switch (check.availability) {
            case Availability::kMissing:
                ++counts.missing;
                break;
            case Availability::kUnreadable:
                ++counts.unreadable;
                break;
            case Availability::kDetached:
                ++counts.detached;
                break;
            case Availability::kOk:
                if (c.status == "missing" || c.status == "unreadable") ++counts.found_again;
                break;
        }
        log_status_change(c.record, status, check);
    }
    return counts;
}

SweepResult sweep_orphan_files(pg::SpiSession& spi) {
    SweepResult result;
    const bool with_storage = storage_columns_installed();
    const std::string own_oid = std::to_string(MyDatabaseId);
    pg::Rows rows = with_storage ? spi.execute(sweep_state, {})
                                 : spi.execute(sweep_state_1_0, {pg::Arg::text(own_oid)});
    const std::uint64_t xmin = static_cast<std::uint64_t>(rows.int8(0, 1).value());
    // Without an installation row (should not happen), nothing counts as ours.
    const std::uint64_t installed = static_cast<std::uint64_t>(rows.int8(0, 2).value_or(INT64_MAX));
    std::unordered_set<std::string> referenced;
    for (std::uint64_t row = 0; row < rows.size(); ++row)
        if (std::optional<std::string> key = rows.text(row, 3)) referenced.insert(std::move(*key));
    std::unordered_set<std::string> held;
    pg::Rows holds = with_storage ? spi.execute(held_files, {})
                                  : spi.execute(held_files_1_0, {pg::Arg::text(own_oid)});
    for (std::uint64_t row = 0; row < holds.size(); ++row)
        if (std::optional<std::string> key = holds.text(row, 1)) held.insert(std::move(*key));

    FolderView folders(with_storage ? installation_token(spi) : std::string());
    for (const std::string& name : folders.database_folders()) {
        pg::check_for_interrupts();
        const FolderOwner before = folders.folder(name).owner;
        // A folder made by 1.0 is claimed by the first server that maintains it; a 1.0
        // table (no token) is maintained as in 1.0, without claiming.
        const bool legacy = before == FolderOwner::kUnclaimed && name == own_oid;
        bool ours = before == FolderOwner::kThisServer;
        if (!ours && with_storage && (legacy || before == FolderOwner::kUpgraded))
            ours = folders.take(name);
        if (!ours && !(legacy && !with_storage)) {
            // An unreadable marker: whose it is cannot be told (its backups are unreadable).
            if (folders.folder(name).owner != FolderOwner::kUnreadable) ++result.foreign_folders;
            report_foreign_folder(folders.folder(name));
            continue;
        }
        const Folder folder = folders.folder(name);
        // Rows of a folder adopted after pg_upgrade (also by a round that did not commit).
        if (folder.marker && folder.marker->previous_system_identifier != 0)
            spi.execute(rehome_rows,
                        {pg::Arg::text(name),
                         pg::Arg::int8(static_cast<std::int64_t>(pg::system_identifier())),
                         pg::Arg::int8(static_cast<std::int64_t>(
                             folder.marker->previous_system_identifier))});
        sweep_folder(folder, referenced, xmin, installed, result);
        const PurgeResult purged = purge_quarantine(folder.path);
        result.removed += purged.removed;
        result.failed += purged.failed;
        sync_hold_markers(folder, held);
    }
    return result;
}

}  // namespace batchguard::backup

using namespace batchguard;

// cleanup_expired_backups(dry_run): a superuser (the workers, pg_cron jobs of a superuser)
// cleans every owner's backups; anyone else their own. Not on a standby, except a dry run.
BATCHGUARD_FUNCTION(batchguard_cleanup_expired_backups) {
    const std::optional<bool> dry_run = pg::bool_arg(fcinfo, 0);
    if (!dry_run) throw Error(sqlstate::kNullValueNotAllowed, "dry_run must not be NULL");
    if (!*dry_run && pg::pg_call([] { return RecoveryInProgress(); }))
        throw Error(sqlstate::kObjectNotInPrerequisiteState,
                    "cleanup_expired_backups() cannot run on a standby",
                    "The server is in recovery: it cannot delete backups.",
                    "Run it on the primary; its deletions reach the standby through replication.");
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
