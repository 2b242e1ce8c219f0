// Retention of backups: expiry cleanup, rows whose file vanished, and the orphan sweep of
// this database's folder (what the maintenance workers and cleanup_expired_backups do).
#pragma once
#include "pg/postgres.hpp"
#include "pg/spi.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace batchguard::backup {

// Deletes the expired backups not on legal hold (every owner's when `owner` is nullopt);
// each file is removed once the deletion commits. With `dry_run`, only counts them.
std::int64_t remove_expired_backups(pg::SpiSession& spi, const std::optional<std::string>& owner,
                                    const std::string& actor, bool dry_run);

// What check_backup_files changed.
struct FileStatusCounts {
    std::int64_t missing = 0;      // newly marked missing (only in this server's folders)
    std::int64_t unreadable = 0;   // newly marked unreadable
    std::int64_t detached = 0;     // newly marked detached (restored from a dump)
    std::int64_t found_again = 0;  // missing or unreadable before, ok now
};

// Records the status of every file backup (every owner's when `owner` is nullopt): missing
// (only where this server owns the folder), unreadable, detached, or ok again; each change
// is logged once. Never fails on a file it cannot read: that is what "unreadable" says.
FileStatusCounts check_backup_files(pg::SpiSession& spi, const std::optional<std::string>& owner);

struct SweepResult {
    std::int64_t quarantined = 0;      // orphan files moved out to their folder's quarantine
    std::int64_t removed = 0;          // quarantined files deleted after the quarantine period
    std::int64_t failed = 0;           // orphans that could not be moved or deleted (retried)
    std::int64_t earlier_install = 0;  // files older than this installation: kept
    std::int64_t foreign_folders = 0;  // folders of this database owned by another server
};

// In every folder of this database that this server owns (claiming folders made by 1.0,
// adopting those carried over by pg_upgrade): moves orphan files into the folder's
// quarantine — named by our pattern, created by a transaction that is no longer running
// (older than the statement snapshot's xmin) and by this installation, with no backups row
// — deletes quarantined files older than batchguard.quarantine_period, and keeps the legal
// hold markers in step with the rows. Folders of other servers are left alone (logged once).
SweepResult sweep_orphan_files(pg::SpiSession& spi);

}  // namespace batchguard::backup
