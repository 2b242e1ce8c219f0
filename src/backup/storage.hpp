// Where the bytes of a backup live, behind one interface: in the database (chunks of
// batchguard.backup_chunks, WAL-logged with the transaction that writes them: they
// replicate, survive failover, pg_rewind and PITR, and pg_dump carries them) or in a file
// of the backup directory (node-local). The bytes are the same backup file either way
// (docs/backup-format.md); every reader goes through open_backup_source.
#pragma once
#include "pg/postgres.hpp"
#include "pg/spi.hpp"

#include "core/hasher.hpp"
#include "core/zstd_stream.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace batchguard::backup {

struct BackupRecord;

enum class Storage { kDatabase, kFile };
const char* storage_name(Storage storage);

// Whether batchguard.backups has the storage columns (1.1) or is a 1.0 table, whose
// backups are all files in <backup_directory>/<database oid>/.
bool storage_columns_installed();

// Where a new backup goes: batchguard.backup_storage, or file storage for a database still
// at 1.0 (no chunks table there).
struct NewBackup {
    Storage storage = Storage::kDatabase;
    std::string folder;         // file storage: the folder under the backup directory
    std::uint64_t cluster = 0;  // file storage: this cluster's system identifier
};
NewBackup choose_storage(pg::SpiSession& spi);

// A new backup's bytes, written sequentially; tracks the size and the SHA-256.
class BackupSink : public ByteSink {
  public:
    virtual std::uint64_t size() const = 0;
    virtual std::string sha256_hex() = 0;
    // Makes everything written durable with the transaction (file: fsync of the file and
    // its folder; database: the last chunk written).
    virtual void make_durable() = 0;
    // Runs after each write with the size so far (quota checks, progress).
    std::function<void(std::uint64_t)> on_write;
};
std::unique_ptr<BackupSink> create_backup_sink(const NewBackup& where, const std::string& backup_id,
                                               std::uint64_t xid);

// An existing backup's bytes, read sequentially or from an offset.
class BackupSource : public ByteSource {
  public:
    virtual std::uint64_t size() const = 0;
    virtual void seek(std::uint64_t offset) = 0;
    // The SHA-256 of everything read (call once, after reading the whole backup; needs
    // `hash` at open).
    virtual std::string sha256_hex() = 0;
};

// Whether a backup's bytes can be read here, without reading them.
enum class Availability { kOk, kMissing, kUnreadable, kDetached };
struct AvailabilityCheck {
    Availability availability = Availability::kOk;
    std::string detail;      // why it is not ok (paths as path_for_message shows them)
    std::string detail_log;  // the same with whole paths, for the server log
    std::string reason;      // unreadable: the system's reason ("Permission denied")
};
AvailabilityCheck check_availability(const BackupRecord& record, pg::SpiSession& spi);
// The same, with the folders' owners read once for many backups.
class FolderView;
AvailabilityCheck check_availability(const BackupRecord& record, FolderView& folders);
const char* availability_status(Availability availability);

// Opens a backup for reading: the expired (PB101), missing (PB102), unreadable (PB104) and
// detached (PB105) errors, or the source.
std::unique_ptr<BackupSource> open_backup_source(const BackupRecord& record, pg::SpiSession& spi,
                                                 bool hash);

// Raises the errors open_backup_source would raise, without opening anything.
void require_available(const BackupRecord& record, pg::SpiSession& spi);

// Whether this server may remove or mark the file of a file backup: the backup is attached
// here and its folder is this server's (or an unclaimed folder of version 1.0). A copy of
// the cluster never touches the files of the folders it shares with its source.
bool owns_file(const BackupRecord& record, pg::SpiSession& spi);
bool owns_file(const BackupRecord& record, FolderView& folders);

// The backups row of `record` has been deleted in this transaction: its file goes once the
// deletion has committed durably, if this server owns it (in-database chunks go with the
// row: ON DELETE CASCADE).
void forget_backup_bytes(pg::SpiSession& spi, const BackupRecord& record);

// A file backup was put on legal hold: the hold marker next to its file keeps the file if
// the database is dropped (see folders.hpp).
void mark_held(pg::SpiSession& spi, const BackupRecord& record);

}  // namespace batchguard::backup
