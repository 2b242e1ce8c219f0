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

// Marks status 'missing' on the rows (status 'ok') whose file no longer exists, logging
// each once. Raises an error when a file cannot be checked (an unreadable directory).
std::int64_t mark_missing_files(pg::SpiSession& spi, const std::optional<std::string>& owner);

struct SweepResult {
    std::int64_t removed = 0;          // orphan files unlinked
    std::int64_t failed = 0;           // orphans that could not be unlinked (retried next round)
    std::int64_t earlier_install = 0;  // files older than this installation: kept
};

// Removes this database's orphan files: named by our pattern, created by a transaction that
// is no longer running (older than the statement snapshot's xmin) and by this installation
// of the extension, with no backups row. Never looks outside <backup_directory>/<db oid>.
SweepResult sweep_orphan_files(pg::SpiSession& spi);

}  // namespace batchguard::backup
