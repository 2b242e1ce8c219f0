// The batchguard.backups and batchguard.audit tables, as the extension's owner writes and
// reads them. Callers' identities are checked here before anything is touched.
#pragma once
#include "pg/postgres.hpp"
#include "backup/storage.hpp"
#include "pg/files.hpp"
#include "pg/spi.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace batchguard::backup {

struct BackupRecord {
    std::string backup_id;
    std::string owner;
    std::string file_sha256;
    std::uint64_t creating_xid = 0;
    std::int64_t compressed_bytes = 0;
    bool legal_hold = false;
    bool expired = false;  // expires_at has passed and no hold keeps it
    TimestampTz created_at = 0;
    TimestampTz expires_at = 0;
    // Who placed the legal hold: "owner" or "admin" (NULL before 1.1 or without a hold).
    std::optional<std::string> legal_hold_by;
    Storage storage = Storage::kFile;
    std::string file_folder;         // file storage: the folder under the backup directory
    std::uint64_t file_cluster = 0;  // file storage: the system that wrote the file

    // File storage: <backup_directory>/<file_folder>/<backup_id>-<creating_xid>.jsonl.zst
    std::string path() const;
    // The file's name in its folder.
    std::string file_name() const;
};

// The backup `backup_id` if the caller may see it: its owner's (and, with `admin_too`,
// any backup for a member of batchguard_admin). Locks the row with FOR UPDATE when asked,
// in the statement that checks the owner: another owner's backup is never locked.
std::optional<BackupRecord> find_backup(pg::SpiSession& spi, Datum backup_id,
                                        std::string_view owner, bool admin_too, bool for_update);

// The one error for a backup that does not exist or belongs to someone else.
[[noreturn]] void unknown_backup(Datum backup_id);

// PB101: the backup is past its expiry and not held.
[[noreturn]] void expired_backup(const BackupRecord& record);

// Raises the expired / missing / unreadable / detached errors for a backup that is about
// to be read (see storage.hpp).
void require_readable(const BackupRecord& record, pg::SpiSession& spi);

// The error (PB103) for a file whose SHA-256 is not the one the backup recorded.
[[noreturn]] void sha256_mismatch(const BackupRecord& record, const std::string& actual);

// Appends an audit row (and logs it: an audit row in a rolled-back transaction is gone).
void audit(pg::SpiSession& spi, const BackupRecord& record, std::string_view actor,
           std::string_view action, std::string_view detail_json);

// Text of a uuid datum.
std::string uuid_text(Datum uuid);

// The status a row shows: missing, unreadable or detached when its file cannot be read here,
// expired past its expiry, else ok.
const char* live_status(const BackupRecord& record, pg::SpiSession& spi);

// Returns the backups row `row` (a composite datum) with its status column replaced.
Datum with_status(Datum row, const char* status, MemoryContext target);

}  // namespace batchguard::backup
