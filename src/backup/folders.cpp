#include "backup/folders.hpp"

#include "core/backup_file_name.hpp"
#include "core/error.hpp"
#include "pg/files.hpp"
#include "pg/guard.hpp"
#include "pg/instance.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "common/file_perm.h"
#include "storage/fd.h"
}

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <set>

namespace batchguard::backup {

namespace {

const char* base_directory() { return pg::backup_directory(); }

[[noreturn]] void file_error(const std::string& what, const std::string& path, int err) {
    const char* state = err == EACCES || err == EPERM || err == EROFS
                            ? sqlstate::kInsufficientPrivilege
                        : err == ENOSPC ? sqlstate::kDiskFull
                                        : sqlstate::kIoError;
    throw Error(
        state,
        "could not " + what + " \"" + pg::path_for_message(path) + "\": " + std::strerror(err), {},
        "Check batchguard.backup_directory and its permissions.");
}

// fsync of a file or directory; failures are logged (a lost rename or marker is found
// again and redone by a later round).
void sync_quietly(const std::string& path, bool is_directory) {
    pg::pg_call([&] { (void)fsync_fname_ext(path.c_str(), is_directory, false, LOG); });
}

struct MarkerRead {
    FolderOwner owner = FolderOwner::kAbsent;
    std::optional<FolderMarker> marker;
    int error = 0;
};

MarkerRead read_marker(const std::string& dir) {
    MarkerRead out;
    const std::string path = dir + "/" + std::string(kOwnerMarkerFile);
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        if (err != ENOENT) {
            out.owner = FolderOwner::kUnreadable;
            out.error = err;
            return out;
        }
        struct stat st;
        if (::stat(dir.c_str(), &st) != 0) {
            out.owner = errno == ENOENT || errno == ENOTDIR ? FolderOwner::kAbsent
                                                            : FolderOwner::kUnreadable;
            out.error = errno;
        } else {
            out.owner = S_ISDIR(st.st_mode) ? FolderOwner::kUnclaimed : FolderOwner::kOtherServer;
        }
        return out;
    }
    char buffer[4096];
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    const int err = errno;
    ::close(fd);
    if (got < 0) {
        out.owner = FolderOwner::kUnreadable;
        out.error = err;
        return out;
    }
    out.marker = parse_folder_marker(std::string_view(buffer, static_cast<std::size_t>(got)));
    // A damaged marker names nobody we know: the folder is left alone.
    out.owner = FolderOwner::kOtherServer;
    return out;
}

// Writes the marker of `dir` naming this server: atomically, either as a claim (fails if
// a marker exists) or replacing the current one (adoption).
bool write_marker(const std::string& dir, const std::string& token, bool replace,
                  std::uint64_t previous_system = 0) {
    const std::string marker_path = dir + "/" + std::string(kOwnerMarkerFile);
    const std::string temp_path = marker_path + "." + std::to_string(MyProcPid) + ".tmp";
    const std::string text = format_folder_marker(
        {pg::server_instance(), pg::system_identifier(), MyDatabaseId, token, previous_system});
    const int fd =
        ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, S_IRUSR | S_IWUSR);
    if (fd < 0) file_error("create", temp_path, errno);
    const bool written =
        ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
        ::fsync(fd) == 0;
    const int err = errno == 0 ? EIO : errno;
    ::close(fd);
    if (!written) {
        ::unlink(temp_path.c_str());
        file_error("write", temp_path, err);
    }
    bool done = true;
    if (replace) {
        if (::rename(temp_path.c_str(), marker_path.c_str()) != 0) {
            const int rename_err = errno;
            ::unlink(temp_path.c_str());
            file_error("replace", marker_path, rename_err);
        }
    } else {
        if (::link(temp_path.c_str(), marker_path.c_str()) != 0) {
            const int link_err = errno;
            ::unlink(temp_path.c_str());
            if (link_err != EEXIST) file_error("create", marker_path, link_err);
            done = false;  // claimed by someone else meanwhile
        } else {
            ::unlink(temp_path.c_str());
        }
    }
    sync_quietly(dir, true);
    return done;
}

void make_directory(const std::string& path) {
    int err = 0;
    const bool made = pg::pg_call([&] {
        const bool ok = MakePGDirectory(path.c_str()) == 0;
        err = errno;
        return ok;
    });
    if (!made && err != EEXIST) file_error("create backup directory", path, err);
    if (made) {
        const std::string parent = path.substr(0, path.find_last_of('/'));
        sync_quietly(path, true);
        if (parent != path) sync_quietly(parent, true);
    }
}

}  // namespace

std::string folder_path(const std::string& folder) {
    return std::string(base_directory()) + "/" + folder;
}

std::string installation_token(pg::SpiSession& spi) {
    if (!pg::extension_column_exists("installation", "token")) return {};
    static pg::Statement token_sql{
        "SELECT token::pg_catalog.text FROM batchguard.installation ORDER BY installed_xid LIMIT 1",
        {}};
    pg::Rows rows = spi.execute(token_sql, {});
    return rows.empty() ? std::string() : rows.text(0, 1).value_or("");
}

const Folder& FolderView::folder(const std::string& name) {
    auto it = cache_.find(name);
    if (it != cache_.end()) return it->second;
    Folder f;
    f.name = name;
    f.path = folder_path(name);
    const std::optional<BackupFolderName> parsed = parse_backup_folder_name(name);
    if (!parsed) {
        f.owner = FolderOwner::kOtherServer;  // not a name we make: never touched
        return cache_.emplace(name, std::move(f)).first->second;
    }
    MarkerRead read = read_marker(f.path);
    f.owner = read.owner;
    f.error = read.error;
    f.marker = read.marker;
    if (f.marker) {
        const FolderMarker& m = *f.marker;
        if (m.instance == pg::server_instance() && m.system_identifier == pg::system_identifier())
            f.owner = FolderOwner::kThisServer;
        else if (m.system_identifier != pg::system_identifier() && !token_.empty() &&
                 m.token == token_ && m.database == parsed->database && m.database == MyDatabaseId)
            f.owner = FolderOwner::kUpgraded;
        else
            f.owner = FolderOwner::kOtherServer;
    }
    return cache_.emplace(name, std::move(f)).first->second;
}

bool FolderView::take(const std::string& name) {
    const Folder f = folder(name);
    switch (f.owner) {
        case FolderOwner::kThisServer:
            return true;
        case FolderOwner::kUpgraded: {
            write_marker(f.path, token_, true, f.marker->system_identifier);
            forget(name);
            const std::string previous =
                f.marker ? std::to_string(f.marker->system_identifier) : "";
            pg::pg_call([&] {
                ereport(LOG, (errmsg("pg_batchguard: adopted backup folder \"%s\"", f.path.c_str()),
                              errdetail("It was made by this database on system %s before an "
                                        "upgrade (pg_upgrade); this server now owns it.",
                                        previous.c_str())));
            });
            return folder(name).owner == FolderOwner::kThisServer;
        }
        case FolderOwner::kAbsent:
            make_directory(base_directory());
            make_directory(f.path);
            [[fallthrough]];
        case FolderOwner::kUnclaimed:
            write_marker(f.path, token_, false);
            forget(name);
            return folder(name).owner == FolderOwner::kThisServer;
        case FolderOwner::kOtherServer:
        case FolderOwner::kUnreadable:
            return false;
    }
    return false;
}

std::string FolderView::writable() {
    const std::string plain = backup_folder_name(MyDatabaseId, "");
    const Folder& first = folder(plain);
    if (first.owner == FolderOwner::kUnreadable)
        file_error("read the owner of backup folder", first.path, first.error);
    if (take(plain)) return plain;
    const std::string own = backup_folder_name(MyDatabaseId, pg::server_instance());
    if (take(own)) return own;
    const Folder& second = folder(own);
    if (second.owner == FolderOwner::kUnreadable)
        file_error("read the owner of backup folder", second.path, second.error);
    throw Error(
        sqlstate::kObjectNotInPrerequisiteState,
        "backup folder \"" + pg::path_for_message(second.path) + "\" belongs to another server", {},
        "Give each cluster its own batchguard.backup_directory.");
}

std::vector<std::string> FolderView::database_folders() {
    std::vector<std::string> out;
    DIR* dir = ::opendir(base_directory());
    if (dir == nullptr) return out;  // no file backups yet (or unreadable: nothing to maintain)
    while (struct dirent* entry = ::readdir(dir)) {
        const std::optional<BackupFolderName> parsed = parse_backup_folder_name(entry->d_name);
        if (parsed && parsed->database == MyDatabaseId) out.emplace_back(entry->d_name);
    }
    ::closedir(dir);
    return out;
}

int quarantine_file(const std::string& folder_path, const std::string& name) {
    const std::string quarantine = folder_path + "/" + std::string(kQuarantineFolder);
    if (::mkdir(quarantine.c_str(), pg_dir_create_mode) != 0 && errno != EEXIST) return errno;
    const std::string from = folder_path + "/" + name;
    const std::string to = quarantine + "/" + name;
    if (::rename(from.c_str(), to.c_str()) != 0) return errno;
    // The grace period starts now.
    (void)::utimes(to.c_str(), nullptr);
    sync_quietly(quarantine, true);
    sync_quietly(folder_path, true);
    return 0;
}

PurgeResult purge_quarantine(const std::string& folder_path) {
    PurgeResult result;
    const std::string quarantine = folder_path + "/" + std::string(kQuarantineFolder);
    DIR* dir = ::opendir(quarantine.c_str());
    if (dir == nullptr) return result;
    std::vector<std::string> names;
    while (struct dirent* entry = ::readdir(dir))
        if (parse_backup_file_name(entry->d_name)) names.emplace_back(entry->d_name);
    ::closedir(dir);
    const std::time_t now = std::time(nullptr);
    for (const std::string& name : names) {
        const std::string path = quarantine + "/" + name;
        struct stat st;
        if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (st.st_mtime + static_cast<std::time_t>(settings::quarantine_period_s) > now) continue;
        if (::unlink(path.c_str()) == 0) {
            ++result.removed;
            pg::pg_call([&] {
                ereport(LOG,
                        (errmsg("pg_batchguard: deleted quarantined orphan \"%s\"", path.c_str()),
                         errdetail("Its quarantine period (batchguard.quarantine_period) has "
                                   "passed.")));
            });
        } else {
            ++result.failed;
            const int err = errno;
            pg::pg_call([&] {
                errno = err;
                ereport(WARNING,
                        (errcode_for_file_access(),
                         errmsg("pg_batchguard: could not delete quarantined orphan \"%s\": %m",
                                path.c_str())));
            });
        }
    }
    return result;
}

void write_hold_marker(const std::string& folder_path, const std::string& stem) {
    const std::string path = folder_path + "/" + stem + std::string(kHoldSuffix);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, S_IRUSR | S_IWUSR);
    if (fd < 0) {
        const int err = errno;
        pg::pg_call([&] {
            errno = err;
            ereport(WARNING, (errcode_for_file_access(),
                              errmsg("pg_batchguard: could not create legal hold marker \"%s\": %m",
                                     path.c_str()),
                              errdetail("Maintenance rounds create it again.")));
        });
        return;
    }
    ::close(fd);
    sync_quietly(path, false);
    sync_quietly(folder_path, true);
}

void remove_hold_marker(const std::string& folder_path, const std::string& stem) {
    const std::string path = folder_path + "/" + stem + std::string(kHoldSuffix);
    if (::unlink(path.c_str()) == 0) sync_quietly(folder_path, true);
}

void report_foreign_folder(const Folder& folder) {
    static std::set<std::string> reported;
    if (!reported.insert(folder.path).second) return;
    const std::string me = pg::server_instance();
    const std::string mine = std::to_string(pg::system_identifier());
    if (folder.owner == FolderOwner::kUnreadable) {
        const int err = folder.error;
        pg::pg_call([&] {
            errno = err;
            ereport(LOG,
                    (errcode_for_file_access(),
                     errmsg("pg_batchguard: the owner of backup folder \"%s\" cannot be read: %m; "
                            "it is left alone",
                            folder.path.c_str())));
        });
        return;
    }
    const std::string owner = folder.marker ? folder.marker->instance : "unknown";
    const std::string system =
        folder.marker ? std::to_string(folder.marker->system_identifier) : "unknown";
    pg::pg_call([&] {
        ereport(LOG,
                (errmsg("pg_batchguard: backup folder \"%s\" belongs to another server; it is left "
                        "alone",
                        folder.path.c_str()),
                 errdetail("Its owner is server instance %s of system %s; this is instance %s of "
                           "system %s. Only its owner sweeps, quarantines or marks missing the "
                           "files of a folder.",
                           owner.c_str(), system.c_str(), me.c_str(), mine.c_str()),
                 errhint("Give each cluster its own batchguard.backup_directory.")));
    });
}

}  // namespace batchguard::backup
