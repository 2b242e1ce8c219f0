// SQL entry points for the storage of backups (see docs/api.md, "Storage"):
// attach_backup_files() after a restore or pg_upgrade, move_backups_to_database().
#include "backup/folders.hpp"
#include "backup/storage.hpp"
#include "backup/store.hpp"
#include "core/error.hpp"
#include "pg/datum.hpp"
#include "pg/files.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"
#include "pg/instance.hpp"
#include "pg/sha256.hpp"

extern "C" {
#include "access/xlog.h"
#include "common/file_perm.h"
#include "storage/fd.h"
}

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace batchguard;
using namespace batchguard::backup;

namespace {

pg::Statement file_backups{
    "SELECT backup_id::pg_catalog.text, creating_xid::pg_catalog.text::pg_catalog.int8, owner,"
    "       file_folder, file_cluster, file_sha256, compressed_bytes"
    "  FROM batchguard.backups WHERE storage = 'file'"
    "   AND ($1::pg_catalog.uuid[] IS NULL OR backup_id OPERATOR(pg_catalog.=) ANY ($1))"
    " ORDER BY created_at, backup_id FOR UPDATE",
    {UUIDARRAYOID}};

pg::Statement attach_row{
    "UPDATE batchguard.backups SET file_folder = $2, file_cluster = $3, status = 'ok'"
    " WHERE backup_id = $1::pg_catalog.uuid",
    {TEXTOID, TEXTOID, INT8OID}};

pg::Statement move_row{
    "UPDATE batchguard.backups"
    "   SET storage = 'database', file_folder = NULL, file_cluster = NULL, status = 'ok'"
    " WHERE backup_id = $1::pg_catalog.uuid",
    {TEXTOID}};

void require_superuser(const char* function, const char* why) {
    if (!superuser())
        throw Error(sqlstate::kInsufficientPrivilege,
                    std::string("permission denied for function ") + function,
                    std::string("Only superusers can ") + why + ".");
}

void require_primary(const char* function) {
    if (pg::pg_call([] { return RecoveryInProgress(); }))
        throw Error(sqlstate::kObjectNotInPrerequisiteState,
                    std::string(function) + " cannot run on a standby",
                    "The server is in recovery.", "Run it on the primary.");
}

void require_1_1(const char* function) {
    if (!storage_columns_installed())
        throw Error(sqlstate::kObjectNotInPrerequisiteState,
                    std::string(function) + " needs version 1.1 of the extension in this database",
                    {}, "Run ALTER EXTENSION pg_batchguard UPDATE first.");
}

BackupRecord record_of(const pg::Rows& rows, std::uint64_t r) {
    BackupRecord record;
    record.backup_id = rows.text(r, 1).value();
    record.creating_xid = static_cast<std::uint64_t>(rows.int8(r, 2).value());
    record.owner = rows.text(r, 3).value();
    record.storage = Storage::kFile;
    record.file_folder = rows.text(r, 4).value_or("");
    record.file_cluster = static_cast<std::uint64_t>(rows.int8(r, 5).value_or(0));
    record.file_sha256 = rows.text(r, 6).value();
    record.compressed_bytes = rows.int8(r, 7).value();
    return record;
}

// The SHA-256 of a whole file, or "" if it cannot be read.
std::string file_sha256(const std::string& path) {
    std::unique_ptr<pg::BackupFileReader> file = pg::BackupFileReader::open(path, true);
    if (!file) return {};
    std::vector<char> buffer(1 << 20);
    while (file->read(buffer.data(), buffer.size()) > 0) pg::check_for_interrupts();
    return file->sha256_hex();
}

bool regular_file(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Copies `from` to a new file `to` (mode 0600) and fsyncs it: where a hard link is not
// possible (another file system).
int copy_file(const std::string& from, const std::string& to) {
    const int in = ::open(from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0) return errno;
    const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, S_IRUSR | S_IWUSR);
    if (out < 0) {
        const int err = errno;
        ::close(in);
        return err;
    }
    std::vector<char> buffer(1 << 20);
    int err = 0;
    for (;;) {
        const ssize_t got = ::read(in, buffer.data(), buffer.size());
        if (got < 0) {
            err = errno;
            break;
        }
        if (got == 0) break;
        if (::write(out, buffer.data(), static_cast<std::size_t>(got)) != got) {
            err = errno == 0 ? ENOSPC : errno;
            break;
        }
    }
    if (err == 0 && ::fsync(out) != 0) err = errno;
    ::close(in);
    ::close(out);
    if (err != 0) ::unlink(to.c_str());
    return err;
}

void warn(const std::string& message, const std::string& detail) {
    pg::pg_call([&] {
        ereport(WARNING,
                (errmsg("pg_batchguard: %s", message.c_str()), errdetail("%s", detail.c_str())));
    });
}

}  // namespace

// attach_backup_files(from_directory): the detached file backups of this database (restored
// from a dump of another database, or carried by pg_upgrade without their folder) get their
// file back in this database's own folder — a hard link of the file named by the row, found
// under from_directory or the backup directory, its SHA-256 verified.
BATCHGUARD_FUNCTION(batchguard_attach_backup_files) {
    require_superuser("attach_backup_files", "attach backup files: it reads the server's files");
    require_primary("attach_backup_files()");
    require_1_1("attach_backup_files()");
    std::optional<std::string> from;
    if (auto arg = pg::text_arg(fcinfo, 0)) {
        from = std::string(*arg);
        if (from->empty())
            throw Error(sqlstate::kInvalidParameterValue, "from_directory must not be empty");
        if ((*from)[0] != '/')
            throw Error(sqlstate::kInvalidParameterValue, "from_directory must be an absolute path",
                        "It is \"" + *from + "\".");
        while (from->size() > 1 && from->back() == '/') from->pop_back();
    }
    const std::string actor = pg::current_owner();
    pg::SpiSession spi;
    pg::Rows rows = spi.execute(file_backups, {pg::Arg::null()});
    std::vector<BackupRecord> records;
    for (std::uint64_t r = 0; r < rows.size(); ++r) records.push_back(record_of(rows, r));
    FolderView folders(installation_token(spi));
    std::optional<std::string> target_folder;
    std::int64_t attached = 0, not_found = 0;
    for (const BackupRecord& record : records) {
        pg::check_for_interrupts();
        if (check_availability(record, folders).availability != Availability::kDetached) continue;
        std::vector<std::string> candidates;
        if (from) {
            candidates.push_back(*from + "/" + record.file_folder + "/" + record.file_name());
            candidates.push_back(*from + "/" + record.file_name());
        } else {
            candidates.push_back(folder_path(record.file_folder) + "/" + record.file_name());
        }
        std::string source;
        for (const std::string& c : candidates)
            if (source.empty() && parse_backup_folder_name(record.file_folder) && regular_file(c))
                source = c;
        if (source.empty()) {
            ++not_found;
            warn("the file of backup " + record.backup_id + " was not found",
                 "Looked for \"" + candidates.front() + "\"; the backup stays detached.");
            continue;
        }
        if (file_sha256(source) != record.file_sha256) {
            warn("the file of backup " + record.backup_id + " does not match it",
                 "\"" + source +
                     "\" does not have the SHA-256 the backup recorded; it stays "
                     "detached.");
            continue;
        }
        if (!target_folder) target_folder = folders.writable();
        const std::string target = folder_path(*target_folder) + "/" + record.file_name();
        char real_source[PATH_MAX], real_target[PATH_MAX];
        const bool same = ::realpath(source.c_str(), real_source) != nullptr &&
                          ::realpath(target.c_str(), real_target) != nullptr &&
                          strcmp(real_source, real_target) == 0;
        if (!same) {
            int err = ::link(source.c_str(), target.c_str()) == 0 ? 0 : errno;
            if (err == EXDEV || err == EPERM || err == EMLINK) err = copy_file(source, target);
            if (err == EEXIST && file_sha256(target) == record.file_sha256) err = 0;
            if (err != 0) {
                warn("could not attach the file of backup " + record.backup_id,
                     "Linking \"" + source + "\" as \"" + target +
                         "\" failed: " + std::strerror(err) + ".");
                continue;
            }
            const std::string dir = folder_path(*target_folder);
            pg::pg_call([&] { (void)fsync_fname_ext(dir.c_str(), true, false, ERROR); });
        }
        spi.execute(attach_row,
                    {pg::Arg::text(record.backup_id), pg::Arg::text(*target_folder),
                     pg::Arg::int8(static_cast<std::int64_t>(pg::system_identifier()))});
        audit(spi, record, actor, "attach",
              "{\"from\":\"" + std::string(from ? "from_directory" : "backup_directory") + "\"}");
        ++attached;
    }
    if (not_found > 0)
        pg::pg_call([&] {
            ereport(NOTICE, (errmsg("%lld detached backups were not attached: their files were not "
                                    "found",
                                    static_cast<long long>(not_found)),
                             errhint("Copy the backup folder of the original cluster or database "
                                     "and pass its path as from_directory.")));
        });
    return Int64GetDatum(attached);
}

// move_backups_to_database(backup_ids): file backups (those listed, or every one of this
// database) move into batchguard.backup_chunks, verified; each file goes once the move has
// committed durably. Backups made by 1.0 are files: this is how they reach the storage that
// survives failover.
BATCHGUARD_FUNCTION(batchguard_move_backups_to_database) {
    require_superuser("move_backups_to_database", "move backups between storages");
    require_primary("move_backups_to_database()");
    require_1_1("move_backups_to_database()");
    pg::Arg ids = pg::Arg::null();
    if (!PG_ARGISNULL(0)) {
        ids = pg::Arg::of(PG_GETARG_DATUM(0));
        ArrayType* array = PG_GETARG_ARRAYTYPE_P(0);
        if (pg::pg_call([&] { return array_contains_nulls(array); }))
            throw Error(sqlstate::kNullValueNotAllowed, "backup_ids must not contain NULL");
    }
    const std::string actor = pg::current_owner();
    pg::SpiSession spi;
    pg::Rows rows = spi.execute(file_backups, {ids});
    std::vector<BackupRecord> records;
    for (std::uint64_t r = 0; r < rows.size(); ++r) records.push_back(record_of(rows, r));
    std::int64_t moved = 0;
    for (const BackupRecord& record : records) {
        pg::check_for_interrupts();
        pg::set_error_context("pg_batchguard backup " + record.backup_id);
        BackupRecord readable = record;
        readable.expired = false;  // an expired backup still moves (it is removed later)
        std::unique_ptr<BackupSource> source = open_backup_source(readable, spi, true);
        std::unique_ptr<BackupSink> sink = create_backup_sink(
            NewBackup{Storage::kDatabase, {}, 0}, record.backup_id, record.creating_xid);
        std::vector<char> buffer(1 << 20);
        while (const std::size_t n = source->read(buffer.data(), buffer.size())) {
            sink->write(buffer.data(), n);
            pg::check_for_interrupts();
        }
        sink->make_durable();
        const std::string actual = source->sha256_hex();
        if (actual != record.file_sha256 || sink->sha256_hex() != record.file_sha256)
            throw Error(sqlstate::kBackupCorrupt,
                        "backup " + record.backup_id + " is corrupt: its SHA-256 does not match",
                        "The file's SHA-256 is " + actual + "; the backup recorded " +
                            record.file_sha256 + ". Nothing was moved.");
        spi.execute(move_row, {pg::Arg::text(record.backup_id)});
        forget_backup_bytes(spi, record);
        audit(spi, record, actor, "move",
              "{\"from\":\"file\",\"to\":\"database\",\"bytes\":" +
                  std::to_string(record.compressed_bytes) + "}");
        ++moved;
    }
    return Int64GetDatum(moved);
}
