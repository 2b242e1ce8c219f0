#include "backup/storage.hpp"

#include "backup/folders.hpp"
#include "backup/store.hpp"
#include "core/backup_folders.hpp"
#include "core/error.hpp"
#include "pg/files.hpp"
#include "pg/guard.hpp"
#include "pg/instance.hpp"
#include "pg/settings.hpp"
#include "pg/sha256.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace batchguard::backup {

namespace {

// Chunks of 1 MiB: few rows per backup, bounded memory per read. Stored EXTERNAL (the
// bytes are compressed already), so each chunk is sliced into TOAST rows, never
// recompressed.
constexpr std::size_t kChunkBytes = 1 << 20;

pg::Statement insert_chunk{
    "INSERT INTO batchguard.backup_chunks (backup_id, chunk, data)"
    " VALUES ($1::pg_catalog.uuid, $2, $3)",
    {TEXTOID, INT4OID, BYTEAOID}};

pg::Statement defer_chunk_check{"SET CONSTRAINTS batchguard.backup_chunks_backup_id_fkey DEFERRED",
                                {}};

pg::Statement chunk_sizes{
    "SELECT chunk, pg_catalog.octet_length(data)::pg_catalog.int8"
    "  FROM batchguard.backup_chunks WHERE backup_id = $1::pg_catalog.uuid ORDER BY chunk",
    {TEXTOID}};

pg::Statement chunk_data{
    "SELECT data FROM batchguard.backup_chunks"
    " WHERE backup_id = $1::pg_catalog.uuid AND chunk = $2",
    {TEXTOID, INT4OID}};

class FileSink : public BackupSink {
  public:
    explicit FileSink(std::string path) : file_(std::move(path)) {
        file_.on_write = [this](std::uint64_t size) {
            if (on_write) on_write(size);
        };
    }
    void write(const char* data, std::size_t size) override { file_.write(data, size); }
    std::uint64_t size() const override { return file_.size(); }
    std::string sha256_hex() override { return file_.sha256_hex(); }
    void make_durable() override { file_.make_durable(); }

  private:
    pg::BackupFileWriter file_;
};

class DatabaseSink : public BackupSink {
  public:
    explicit DatabaseSink(std::string backup_id)
        : backup_id_(std::move(backup_id)), hasher_(pg::make_sha256()) {
        // The chunks reference their backups row, which is inserted once the export is
        // complete: the check runs at commit, even if the caller made constraints immediate.
        pg::SpiSession spi;
        spi.execute(defer_chunk_check, {});
    }

    void write(const char* data, std::size_t size) override {
        hasher_->update(data, size);
        buffer_.append(data, size);
        size_ += size;
        std::size_t start = 0;
        while (buffer_.size() - start >= kChunkBytes) {
            store(buffer_.data() + start, kChunkBytes);
            start += kChunkBytes;
        }
        if (start > 0) buffer_.erase(0, start);
        if (on_write) on_write(size_);
    }
    std::uint64_t size() const override { return size_; }
    std::string sha256_hex() override { return hasher_->finish_hex(); }
    void make_durable() override {
        if (!buffer_.empty() || next_chunk_ == 0) store(buffer_.data(), buffer_.size());
        buffer_.clear();
    }

  private:
    void store(const char* data, std::size_t size) {
        pg::SpiSession spi;
        const Datum bytes = pg::pg_call([&] {
            auto* b = static_cast<bytea*>(palloc(VARHDRSZ + size));
            SET_VARSIZE(b, VARHDRSZ + size);
            std::memcpy(VARDATA(b), data, size);
            return PointerGetDatum(b);
        });
        spi.execute(insert_chunk,
                    {pg::Arg::text(backup_id_), pg::Arg::int4(next_chunk_), pg::Arg::of(bytes)});
        ++next_chunk_;
    }

    std::string backup_id_;
    std::unique_ptr<Hasher> hasher_;
    std::string buffer_;
    std::uint64_t size_ = 0;
    std::int32_t next_chunk_ = 0;
};

class FileSource : public BackupSource {
  public:
    explicit FileSource(std::unique_ptr<pg::BackupFileReader> file) : file_(std::move(file)) {}
    std::size_t read(char* buffer, std::size_t capacity) override {
        return file_->read(buffer, capacity);
    }
    std::uint64_t size() const override { return file_->size(); }
    void seek(std::uint64_t offset) override { file_->seek(offset); }
    std::string sha256_hex() override { return file_->sha256_hex(); }

  private:
    std::unique_ptr<pg::BackupFileReader> file_;
};

class DatabaseSource : public BackupSource {
  public:
    DatabaseSource(const BackupRecord& record, bool hash) : backup_id_(record.backup_id) {
        if (hash) hasher_ = pg::make_sha256();
        pg::SpiSession spi(pg::SpiSession::Access::kReadOnly);
        pg::Rows rows = spi.execute(chunk_sizes, {pg::Arg::text(backup_id_)});
        std::uint64_t offset = 0;
        for (std::uint64_t r = 0; r < rows.size(); ++r) {
            if (rows.int4(r, 1).value() != static_cast<std::int32_t>(r))
                corrupt(record, "a chunk is missing");
            starts_.push_back(offset);
            offset += static_cast<std::uint64_t>(rows.int8(r, 2).value());
        }
        size_ = offset;
        if (size_ != static_cast<std::uint64_t>(record.compressed_bytes))
            corrupt(record, "Its stored chunks hold " + std::to_string(size_) +
                                " bytes; the backup recorded " +
                                std::to_string(record.compressed_bytes) + ".");
    }

    std::size_t read(char* buffer, std::size_t capacity) override {
        if (offset_ >= size_ || capacity == 0) return 0;
        const std::size_t index = static_cast<std::size_t>(
            std::upper_bound(starts_.begin(), starts_.end(), offset_) - starts_.begin() - 1);
        if (static_cast<std::int64_t>(index) != cached_) fetch(index);
        const std::uint64_t within = offset_ - starts_[index];
        const std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(capacity, chunk_.size() - within));
        std::memcpy(buffer, chunk_.data() + within, n);
        offset_ += n;
        if (hasher_) hasher_->update(buffer, n);
        return n;
    }
    std::uint64_t size() const override { return size_; }
    void seek(std::uint64_t offset) override { offset_ = offset; }
    std::string sha256_hex() override { return hasher_->finish_hex(); }

  private:
    [[noreturn]] static void corrupt(const BackupRecord& record, const std::string& detail) {
        throw Error(sqlstate::kBackupCorrupt, "backup " + record.backup_id + " is corrupt", detail);
    }

    void fetch(std::size_t index) {
        pg::SpiSession spi(pg::SpiSession::Access::kReadOnly);
        pg::Rows rows = spi.execute(chunk_data, {pg::Arg::text(backup_id_),
                                                 pg::Arg::int4(static_cast<std::int32_t>(index))});
        if (rows.empty())
            throw Error(sqlstate::kBackupCorrupt, "backup " + backup_id_ + " is corrupt",
                        "Chunk " + std::to_string(index) + " disappeared while it was read.");
        const Datum value = rows.datum(0, 1).value();
        pg::pg_call([&] {
            bytea* b = DatumGetByteaPP(value);
            chunk_.assign(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
        });
        const std::uint64_t expected =
            (index + 1 < starts_.size() ? starts_[index + 1] : size_) - starts_[index];
        if (chunk_.size() != expected)
            throw Error(sqlstate::kBackupCorrupt, "backup " + backup_id_ + " is corrupt",
                        "Chunk " + std::to_string(index) + " changed while it was read.");
        cached_ = static_cast<std::int64_t>(index);
    }

    std::string backup_id_;
    std::unique_ptr<Hasher> hasher_;
    std::vector<std::uint64_t> starts_;
    std::uint64_t size_ = 0, offset_ = 0;
    std::string chunk_;
    std::int64_t cached_ = -1;
};

// What opening a file for reading would find: 0, or the errno of the failure (ENOENT for
// a missing file). A symlink or anything but a regular file is unreadable.
int probe_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return errno == ENOTDIR ? ENOENT : errno;
    struct stat st;
    const int result = ::fstat(fd, &st) != 0 ? errno : S_ISREG(st.st_mode) ? 0 : EINVAL;
    ::close(fd);
    return result;
}

}  // namespace

const char* storage_name(Storage storage) {
    return storage == Storage::kDatabase ? "database" : "file";
}

bool storage_columns_installed() { return pg::extension_column_exists("backups", "storage"); }

NewBackup choose_storage(pg::SpiSession& spi) {
    NewBackup where;
    const bool installed = storage_columns_installed();
    where.storage = installed && settings::backup_storage == settings::kStorageDatabase
                        ? Storage::kDatabase
                        : Storage::kFile;
    if (where.storage == Storage::kFile) {
        where.cluster = pg::system_identifier();
        if (installed) {
            FolderView view(installation_token(spi));
            where.folder = view.writable();
        } else {
            // 1.0: <backup_directory>/<database oid>/, whoever else uses it.
            where.folder = std::to_string(MyDatabaseId);
            pg::ensure_backup_directory();
        }
    }
    return where;
}

std::unique_ptr<BackupSink> create_backup_sink(const NewBackup& where, const std::string& backup_id,
                                               std::uint64_t xid) {
    if (where.storage == Storage::kDatabase) return std::make_unique<DatabaseSink>(backup_id);
    return std::make_unique<FileSink>(folder_path(where.folder) + "/" + backup_id + "-" +
                                      std::to_string(xid) + ".jsonl.zst");
}

const char* availability_status(Availability availability) {
    switch (availability) {
        case Availability::kOk:
            return "ok";
        case Availability::kMissing:
            return "missing";
        case Availability::kUnreadable:
            return "unreadable";
        case Availability::kDetached:
            return "detached";
    }
    return "ok";
}

AvailabilityCheck check_availability(const BackupRecord& record, pg::SpiSession& spi) {
    if (record.storage == Storage::kDatabase || record.file_cluster == pg::system_identifier()) {
        FolderView unused{std::string()};  // the token matters only for another system's folder
        return check_availability(record, unused);
    }
    FolderView view(installation_token(spi));
    return check_availability(record, view);
}

AvailabilityCheck check_availability(const BackupRecord& record, FolderView& folders) {
    AvailabilityCheck out;
    if (record.storage == Storage::kDatabase) return out;
    const std::optional<BackupFolderName> folder = parse_backup_folder_name(record.file_folder);
    if (!folder) {
        out.availability = Availability::kDetached;
        out.detail =
            "Its folder name \"" + record.file_folder + "\" is not one the extension makes.";
        return out;
    }
    if (folder->database != MyDatabaseId) {
        out.availability = Availability::kDetached;
        out.detail = "Its file belongs to the database with oid " +
                     std::to_string(folder->database) + ": this database was restored from a dump.";
        return out;
    }
    if (record.file_cluster != pg::system_identifier()) {
        // pg_upgrade gives the cluster a new system identifier: a folder it carried over is
        // recognised by its marker (the same installation token).
        const Folder& f = folders.folder(record.file_folder);
        const bool carried =
            f.marker && ((f.owner == FolderOwner::kUpgraded &&
                          f.marker->system_identifier == record.file_cluster) ||
                         (f.owner == FolderOwner::kThisServer &&
                          f.marker->previous_system_identifier == record.file_cluster));
        if (!carried) {
            out.availability = Availability::kDetached;
            out.detail = "Its file was written by another cluster (system " +
                         std::to_string(record.file_cluster) +
                         "): this database was restored from a dump or upgraded with pg_upgrade.";
            return out;
        }
    }
    const int error = probe_file(record.path());
    if (error == ENOENT) {
        out.availability = Availability::kMissing;
        out.detail = "Expected \"" + pg::path_for_message(record.path()) + "\".";
        out.detail_log = "Expected \"" + record.path() + "\".";
    } else if (error != 0) {
        out.availability = Availability::kUnreadable;
        out.reason = error == EINVAL ? "it is not a regular file" : std::strerror(error);
        out.detail =
            "Opening \"" + pg::path_for_message(record.path()) + "\" failed: " + out.reason + ".";
        out.detail_log = "Opening \"" + record.path() + "\" failed: " + out.reason + ".";
    }
    return out;
}

void require_available(const BackupRecord& record, pg::SpiSession& spi) {
    if (record.expired) expired_backup(record);
    const AvailabilityCheck check = check_availability(record, spi);
    switch (check.availability) {
        case Availability::kOk:
            return;
        case Availability::kMissing:
            throw Error(sqlstate::kBackupFileMissing,
                        "the file of backup " + record.backup_id + " is missing",
                        check.detail +
                            " Files are node-local: a replica, a restored base backup "
                            "or another server does not have them.",
                        "Copy the file back from a file-level copy, or delete the backup with "
                        "delete_backup().");
        case Availability::kUnreadable:
            throw Error(
                sqlstate::kBackupFileUnreadable,
                "the file of backup " + record.backup_id + " cannot be read: " + check.reason,
                check.detail,
                "Check the permissions of batchguard.backup_directory and its folders.");
        case Availability::kDetached:
            throw Error(sqlstate::kBackupDetached,
                        "backup " + record.backup_id + " is not attached to this database",
                        check.detail,
                        "A superuser re-attaches restored file backups with "
                        "SELECT batchguard.attach_backup_files() (see docs/operations.md, "
                        "\"Upgrading\").");
    }
}

std::unique_ptr<BackupSource> open_backup_source(const BackupRecord& record, pg::SpiSession& spi,
                                                 bool hash) {
    require_available(record, spi);
    if (record.storage == Storage::kDatabase) return std::make_unique<DatabaseSource>(record, hash);
    std::unique_ptr<pg::BackupFileReader> file = pg::BackupFileReader::open(record.path(), hash);
    if (!file)
        throw Error(sqlstate::kBackupFileMissing,
                    "the file of backup " + record.backup_id + " is missing");
    return std::make_unique<FileSource>(std::move(file));
}

bool owns_file(const BackupRecord& record, pg::SpiSession& spi) {
    if (record.storage != Storage::kFile) return false;
    FolderView view(installation_token(spi));
    return owns_file(record, view);
}

bool owns_file(const BackupRecord& record, FolderView& folders) {
    if (record.storage != Storage::kFile) return false;
    const std::optional<BackupFolderName> folder = parse_backup_folder_name(record.file_folder);
    if (!folder || folder->database != MyDatabaseId) return false;
    const FolderOwner owner = folders.folder(record.file_folder).owner;
    if (owner == FolderOwner::kThisServer || owner == FolderOwner::kUpgraded) return true;
    // A folder nobody has claimed yet: made by 1.0 on this cluster.
    return owner == FolderOwner::kUnclaimed && folder->instance.empty() &&
           record.file_cluster == pg::system_identifier();
}

void forget_backup_bytes(pg::SpiSession& spi, const BackupRecord& record) {
    if (owns_file(record, spi)) pg::remove_backup_file_at_commit(record.path());
}

void mark_held(pg::SpiSession& spi, const BackupRecord& record) {
    if (owns_file(record, spi))
        write_hold_marker(folder_path(record.file_folder),
                          record.backup_id + "-" + std::to_string(record.creating_xid));
}

}  // namespace batchguard::backup
