// Backup files on disk: where they live, writing them durably, reading them back, and
// tying each new file to the transaction that wrote it (removed on abort, including a
// rolled-back savepoint; PREPARE TRANSACTION refused while one is pending).
#pragma once
#include "pg/postgres.hpp"

#include "core/hasher.hpp"
#include "core/zstd_stream.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

extern "C" {
#include "storage/fd.h"
}

namespace batchguard::pg {

// batchguard.backup_directory (its default until the setting is defined).
const char* backup_directory() noexcept;

// <backup_directory>/<database oid> into `out`, in plain C: for the workers' loops, which
// hold no C++ object where PostgreSQL may longjmp.
void format_database_backup_directory(char* out, std::size_t size, Oid database) noexcept;

// <backup_directory>/<this database's oid>
std::string database_backup_directory();

// A backup file's or folder's path as messages show it: whole to a superuser's session,
// relative to "<batchguard.backup_directory>" to anyone else, who may not even read that
// setting (the server log gets the whole path: errdetail_log).
std::string path_for_message(const std::string& path);

// <backup_directory>/<database oid>/<backup id>-<xid>.jsonl.zst: nothing a caller can
// write decides it.
std::string backup_file_path(const std::string& backup_id, std::uint64_t xid);

// Creates the database's backup directory (mode 0700) if needed, durably.
void ensure_backup_directory();

// A new backup file, mode 0600, created exclusively under its final name and registered
// with the current (sub)transaction before the first byte is written. Tracks the size
// and the SHA-256 of what is written; `on_write` runs after each write (quota checks).
class BackupFileWriter : public ByteSink {
  public:
    explicit BackupFileWriter(std::string path);
    ~BackupFileWriter() override;
    BackupFileWriter(const BackupFileWriter&) = delete;
    BackupFileWriter& operator=(const BackupFileWriter&) = delete;

    void write(const char* data, std::size_t size) override;
    // fsyncs the file, closes it and fsyncs its directory.
    void make_durable();

    std::uint64_t size() const { return size_; }
    std::string sha256_hex() { return hasher_->finish_hex(); }
    std::function<void(std::uint64_t)> on_write;

  private:
    std::string path_;
    std::string shown_;  // path_for_message(path_)
    File file_ = -1;
    std::uint64_t size_ = 0;
    std::unique_ptr<Hasher> hasher_;
};

// An existing backup file read sequentially (or from an offset), optionally hashing
// everything it reads.
class BackupFileReader : public ByteSource {
  public:
    // Returns nullptr when the file does not exist; other errors are raised.
    static std::unique_ptr<BackupFileReader> open(const std::string& path, bool hash);
    ~BackupFileReader() override;

    std::size_t read(char* buffer, std::size_t capacity) override;
    std::uint64_t size() const { return size_; }
    void seek(std::uint64_t offset) { offset_ = offset; }
    // The SHA-256 of everything read so far (call once, after reading the whole file).
    std::string sha256_hex() { return hasher_->finish_hex(); }

  private:
    BackupFileReader() = default;
    File file_ = -1;
    std::string path_;
    std::string shown_;  // path_for_message(path_)
    std::uint64_t size_ = 0;
    std::uint64_t offset_ = 0;
    std::unique_ptr<Hasher> hasher_;
};

// Whether a file exists (a stat, for the status of a backup row).
bool backup_file_exists(const std::string& path);

// Removes the file once the current transaction commits (its row is deleted in it); a
// missing file is fine, other failures are logged.
void remove_backup_file_at_commit(const std::string& path);

// Registers the transaction callbacks (once, from _PG_init).
void register_backup_file_callbacks();

// True while the current transaction has written or deleted a backup file.
bool backup_files_pending();

}  // namespace batchguard::pg
