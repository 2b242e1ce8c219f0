#include "pg/files.hpp"

#include "pg/guard.hpp"
#include "pg/settings.hpp"
#include "pg/sha256.hpp"

extern "C" {
#include "access/xlog.h"
#include "common/file_perm.h"
#include "pgstat.h"
}

#include <sys/stat.h>

#include <cerrno>
#include <utility>
#include <vector>

namespace batchguard::pg {

namespace {

// Files written by the current transaction, with the subtransaction that wrote each.
// A file is either created by the transaction (removed if it aborts) or scheduled for
// removal (removed only once the transaction that deleted its row has committed).
struct PendingFile {
    std::string path;
    SubTransactionId subxact;
    bool remove_at_commit = false;
};
std::vector<PendingFile>* pending = nullptr;

std::vector<PendingFile>& pending_files() {
    if (pending == nullptr) pending = new std::vector<PendingFile>();
    return *pending;
}

std::string relative_path(const std::string& path);

// Runs in abort callbacks: must never raise an ERROR.
void unlink_quietly(const std::string& path) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        // The client may be anyone: the whole path goes to the server log only.
        const std::string shown = relative_path(path);
        ereport(WARNING,
                (errcode_for_file_access(),
                 errmsg("pg_batchguard: could not remove backup file \"%s\": %m", shown.c_str()),
                 errdetail_log("The file is \"%s\".", path.c_str())));
    }
}

// Flushes the WAL up to the commit record that just deleted rows: with synchronous_commit
// = off a crash could otherwise bring those rows back after their files were unlinked.
bool commit_is_durable() {
    try {
        pg_call([] { XLogFlush(XactLastCommitEnd); });
        return true;
    } catch (...) {
        ereport(WARNING, (errmsg("pg_batchguard: could not flush the commit of deleted backups; "
                                 "their files are kept and swept as orphans later")));
        return false;
    }
}

// Ends the (sub)transaction `from` (InvalidSubTransactionId: the whole transaction):
// after a durable commit, files scheduled for removal go; after an abort, files created go.
void end_of_transaction(bool committed, SubTransactionId from) {
    if (pending == nullptr) return;
    bool durable = true;
    if (committed)
        for (const PendingFile& f : *pending)
            if (f.remove_at_commit && f.subxact >= from) {
                durable = commit_is_durable();
                break;
            }
    std::vector<PendingFile> kept;
    for (PendingFile& f : *pending) {
        if (f.subxact >= from) {
            if (f.remove_at_commit == committed && (durable || !committed)) unlink_quietly(f.path);
        } else {
            kept.push_back(std::move(f));
        }
    }
    pending->swap(kept);
}

void xact_callback(XactEvent event, void* arg) {
    (void)arg;
    if (event == XACT_EVENT_PRE_PREPARE) {
        // No C++ object lives in this frame: raising an ERROR here is safe (and allowed).
        if (pending != nullptr && !pending->empty())
            ereport(ERROR,
                    (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                     errmsg("cannot PREPARE a transaction that has exported or deleted a backup"),
                     errdetail("Backup files are tied to the transaction that wrote or "
                               "deleted them."),
                     errhint("Export and delete backups in transactions that are not "
                             "prepared.")));
        return;
    }
    switch (event) {
        case XACT_EVENT_COMMIT:
        case XACT_EVENT_PARALLEL_COMMIT:
        case XACT_EVENT_PREPARE:
            guard_callback(
                "finishing the backup files of a committed transaction",
                [](void*) { end_of_transaction(true, InvalidSubTransactionId); }, nullptr);
            break;
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PARALLEL_ABORT:
            guard_callback(
                "removing the backup files of an aborted transaction",
                [](void*) { end_of_transaction(false, InvalidSubTransactionId); }, nullptr);
            break;
        default:
            break;
    }
}

struct SubxactIds {
    SubTransactionId mine, parent;
};

void subxact_callback(SubXactEvent event, SubTransactionId my_subid, SubTransactionId parent_subid,
                      void* arg) {
    (void)arg;
    if (pending == nullptr || pending->empty()) return;
    SubxactIds ids{my_subid, parent_subid};
    if (event == SUBXACT_EVENT_ABORT_SUB) {
        guard_callback(
            "removing the backup files of a rolled-back savepoint",
            [](void* a) { end_of_transaction(false, static_cast<SubxactIds*>(a)->mine); }, &ids);
    } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
        // The parent now owns the files of the released savepoint.
        for (PendingFile& f : *pending)
            if (f.subxact >= my_subid) f.subxact = parent_subid;
    }
}

}  // namespace

const char* backup_directory() noexcept {
    const char* dir = settings::backup_directory;
    return dir != nullptr ? dir : settings::kDefaultBackupDirectory;
}

void format_database_backup_directory(char* out, std::size_t size, Oid database) noexcept {
    ::snprintf(out, size, "%s/%u", backup_directory(), database);
}

std::string database_backup_directory() {
    char dir[MAXPGPATH];
    format_database_backup_directory(dir, sizeof dir, MyDatabaseId);
    return dir;
}

std::string backup_file_path(const std::string& backup_id, std::uint64_t xid) {
    return database_backup_directory() + "/" + backup_id + "-" + std::to_string(xid) + ".jsonl.zst";
}

void ensure_backup_directory() {
    const std::string base = backup_directory();
    const std::string dir = database_backup_directory();
    const std::string shown_base = path_for_message(base), shown_dir = path_for_message(dir);
    const std::size_t slash = base.find_last_of('/');
    const std::string base_parent = slash == std::string::npos ? std::string(".")
                                    : slash == 0               ? std::string("/")
                                                               : base.substr(0, slash);
    const std::pair<const std::string*, const std::string*> folders[] = {{&base, &base_parent},
                                                                         {&dir, &base}};
    pg_call([&] {
        for (const auto& [folder, parent] : folders) {
            if (MakePGDirectory(folder->c_str()) == 0) {
                // The new folder and the entry naming it in its parent, both durable (at
                // ERROR: a PANIC is not worth a folder that the next export creates again).
                fsync_fname_ext(folder->c_str(), true, false, ERROR);
                fsync_fname_ext(parent->c_str(), true, false, ERROR);
            } else if (errno != EEXIST) {
                const std::string& shown = folder == &base ? shown_base : shown_dir;
                ereport(ERROR,
                        (errcode_for_file_access(),
                         errmsg("could not create backup directory \"%s\": %m", shown.c_str()),
                         errdetail_log("The directory is \"%s\".", folder->c_str()),
                         errhint("Check batchguard.backup_directory and its permissions.")));
            }
        }
    });
}

namespace {

// The path relative to "<batchguard.backup_directory>" (or its file name, if it is not in it).
std::string relative_path(const std::string& path) {
    const std::string base = backup_directory();
    if (path == base) return "<batchguard.backup_directory>";
    if (path.compare(0, base.size() + 1, base + "/") == 0)
        return "<batchguard.backup_directory>/" + path.substr(base.size() + 1);
    const std::size_t slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::string path_for_message(const std::string& path) {
    // The session's user reads the message: the extension's own switch to the owner of its
    // tables (or a SECURITY DEFINER function) must not make it a superuser's message.
    if (pg_call([] { return superuser_arg(GetSessionUserId()); })) return path;
    return relative_path(path);
}

BackupFileWriter::BackupFileWriter(std::string path)
    : path_(std::move(path)), hasher_(make_sha256()) {
    // Registered first: if anything below fails, the abort removes what exists.
    SubTransactionId subxact = GetCurrentSubTransactionId();
    pending_files().push_back({path_, subxact});
    shown_ = path_for_message(path_);
    file_ = pg_call([&] {
        File f = PathNameOpenFilePerm(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | PG_BINARY,
                                      S_IRUSR | S_IWUSR);
        if (f < 0)
            ereport(ERROR, (errcode_for_file_access(),
                            errmsg("could not create backup file \"%s\": %m", shown_.c_str()),
                            errdetail_log("The file is \"%s\".", path_.c_str()),
                            errhint("Check batchguard.backup_directory and its permissions.")));
        return f;
    });
}

BackupFileWriter::~BackupFileWriter() {
    if (file_ < 0) return;
    try {
        pg_call([&] { FileClose(file_); });
    } catch (...) {
    }
}

void BackupFileWriter::write(const char* data, std::size_t size) {
    hasher_->update(data, size);
    while (size > 0) {
        const int chunk = static_cast<int>(std::min<std::size_t>(size, 1 << 30));
        pg_call([&] {
            errno = 0;
            const int written = FileWrite(file_, const_cast<char*>(data), chunk,
                                          static_cast<off_t>(size_), PG_WAIT_EXTENSION);
            if (written != chunk) {
                if (errno == 0) errno = ENOSPC;  // a short write without an error: disk full
                ereport(ERROR, (errcode_for_file_access(),
                                errmsg("could not write backup file \"%s\": %m", shown_.c_str()),
                                errdetail_log("The file is \"%s\".", path_.c_str())));
            }
        });
        data += chunk;
        size -= static_cast<std::size_t>(chunk);
        size_ += static_cast<std::uint64_t>(chunk);
    }
    if (on_write) on_write(size_);
}

void BackupFileWriter::make_durable() {
    pg_call([&] {
        // A plain ERROR, not data_sync_elevel(ERROR) (a PANIC with the default
        // data_sync_retry = off): the file is removed when the transaction aborts, so
        // nothing depends on the pages whose write-back failed, and a role allowed to
        // export must not be able to restart the cluster through a full or flaky backup
        // file system.
        if (FileSync(file_, PG_WAIT_EXTENSION) != 0)
            ereport(ERROR, (errcode_for_file_access(),
                            errmsg("could not fsync backup file \"%s\": %m", shown_.c_str()),
                            errdetail_log("The file is \"%s\".", path_.c_str())));
        FileClose(file_);
    });
    file_ = -1;
    const std::string dir = database_backup_directory();
    pg_call([&] { fsync_fname_ext(dir.c_str(), true, false, ERROR); });
}

std::unique_ptr<BackupFileReader> BackupFileReader::open(const std::string& path, bool hash) {
    std::unique_ptr<BackupFileReader> reader(new BackupFileReader());
    reader->path_ = path;
    reader->shown_ = path_for_message(path);
    if (hash) reader->hasher_ = make_sha256();
    bool missing = false;
    bool regular = true;
    // O_NOFOLLOW and the regular-file check: a symlink, a directory or a FIFO put in place of
    // a backup file is never read as the backup (not even a chunk of it).
    reader->file_ = pg_call([&] {
        // O_NONBLOCK: opening a FIFO named like a backup would otherwise wait for a writer,
        // uninterruptibly; it has no effect on the regular file a backup is.
        File f = PathNameOpenFile(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | PG_BINARY);
        if (f < 0) {
            if (errno == ENOENT) {
                missing = true;
            } else {
                ereport(ERROR,
                        (errcode_for_file_access(),
                         errmsg("could not open backup file \"%s\": %m", reader->shown_.c_str()),
                         errdetail_log("The file is \"%s\".", path.c_str())));
            }
        } else {
            struct stat st;
            if (fstat(FileGetRawDesc(f), &st) != 0 || !S_ISREG(st.st_mode)) regular = false;
        }
        return f;
    });
    if (missing) return nullptr;
    if (!regular)
        throw Error(sqlstate::kIoError,
                    "backup file \"" + reader->shown_ + "\" is not a regular file");
    const off_t size = pg_call([&] { return FileSize(reader->file_); });
    if (size < 0)
        throw Error(sqlstate::kIoError,
                    "could not determine the size of backup file \"" + reader->shown_ + "\"");
    reader->size_ = static_cast<std::uint64_t>(size);
    return reader;
}

BackupFileReader::~BackupFileReader() {
    if (file_ < 0) return;
    try {
        pg_call([&] { FileClose(file_); });
    } catch (...) {
    }
}

std::size_t BackupFileReader::read(char* buffer, std::size_t capacity) {
    const int amount = static_cast<int>(std::min<std::size_t>(capacity, 1 << 30));
    const int n = pg_call([&] {
        const int got =
            FileRead(file_, buffer, amount, static_cast<off_t>(offset_), PG_WAIT_EXTENSION);
        if (got < 0)
            ereport(ERROR, (errcode_for_file_access(),
                            errmsg("could not read backup file \"%s\": %m", shown_.c_str()),
                            errdetail_log("The file is \"%s\".", path_.c_str())));
        return got;
    });
    offset_ += static_cast<std::uint64_t>(n);
    if (hasher_ && n > 0) hasher_->update(buffer, static_cast<std::size_t>(n));
    return static_cast<std::size_t>(n);
}

bool backup_file_exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
}

void remove_backup_file_at_commit(const std::string& path) {
    pending_files().push_back({path, GetCurrentSubTransactionId(), true});
}

void register_backup_file_callbacks() {
    RegisterXactCallback(xact_callback, nullptr);
    RegisterSubXactCallback(subxact_callback, nullptr);
}

bool backup_files_pending() { return pending != nullptr && !pending->empty(); }

}  // namespace batchguard::pg
