#include "pg/instance.hpp"

#include "core/backup_folders.hpp"
#include "core/error.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "access/xlog.h"
}

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace batchguard::pg {

namespace {

char cached_id[17];
bool cached = false;

struct Failure {
    const char* what = nullptr;  // what failed, for the log
    int error = 0;               // its errno
};

// Reads the instance record under an exclusive lock and makes a new one when it belongs to
// another data directory or system. Plain system calls only: callable from the launcher
// (no transaction, no resource owner) as well as from backends.
bool load(char id[17], Failure& failure, bool& made_new) {
    const char* path = kInstanceFile.data();  // relative: every process runs in the data directory
    const int fd = ::open(path, O_RDWR | O_CREAT | O_CLOEXEC, S_IRUSR | S_IWUSR);
    if (fd < 0) {
        failure = {"open", errno};
        return false;
    }
    bool ok = false;
    do {
        if (::flock(fd, LOCK_EX) != 0) {
            failure = {"lock", errno};
            break;
        }
        char buffer[4096];
        ssize_t got = ::pread(fd, buffer, sizeof buffer, 0);
        if (got < 0) {
            failure = {"read", errno};
            break;
        }
        struct stat data_directory;
        if (::stat(".", &data_directory) != 0) {
            failure = {"stat the data directory for", errno};
            break;
        }
        const std::uint64_t system = GetSystemIdentifier();
        std::optional<InstanceRecord> record;
        try {
            record = parse_instance_record(std::string_view(buffer, static_cast<std::size_t>(got)));
        } catch (...) {
            record.reset();
        }
        if (record && record->system_identifier == system &&
            record->device == static_cast<std::uint64_t>(data_directory.st_dev) &&
            record->inode == static_cast<std::uint64_t>(data_directory.st_ino)) {
            std::memcpy(id, record->instance.c_str(), 17);
            ok = true;
            break;
        }
        // First use in this data directory: a fresh initdb, a copy (pg_basebackup, a file
        // copy, pg_rewind) or a pg_upgrade'd cluster.
        unsigned char random[8];
        if (!pg_strong_random(random, sizeof random)) {
            failure = {"generate a random id for", EIO};
            break;
        }
        static const char hex[] = "0123456789abcdef";
        for (int i = 0; i < 8; ++i) {
            id[2 * i] = hex[random[i] >> 4];
            id[2 * i + 1] = hex[random[i] & 15];
        }
        id[16] = '\0';
        std::string text;
        try {
            text = format_instance_record({id, system,
                                           static_cast<std::uint64_t>(data_directory.st_dev),
                                           static_cast<std::uint64_t>(data_directory.st_ino)});
        } catch (...) {
            failure = {"format", ENOMEM};
            break;
        }
        if (::ftruncate(fd, 0) != 0 ||
            ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()) ||
            ::fsync(fd) != 0) {
            failure = {"write", errno == 0 ? EIO : errno};
            break;
        }
        const int dir = ::open(".", O_RDONLY | O_CLOEXEC);
        if (dir >= 0) {
            (void)::fsync(dir);
            ::close(dir);
        }
        made_new = true;
        ok = true;
    } while (false);
    ::close(fd);  // also releases the lock
    return ok;
}

}  // namespace

std::uint64_t system_identifier() noexcept { return GetSystemIdentifier(); }

bool server_instance_id(char id[17], int elevel) noexcept {
    if (cached) {
        std::memcpy(id, cached_id, 17);
        return true;
    }
    Failure failure;
    bool made_new = false;
    if (!load(cached_id, failure, made_new)) {
        errno = failure.error;
        ereport(elevel, (errcode_for_file_access(),
                         errmsg("pg_batchguard: could not %s \"%s\": %m", failure.what,
                                kInstanceFile.data()),
                         errhint("The file in the data directory tells this server's backup "
                                 "folders from those of its copies; it must be writable.")));
        return false;
    }
    cached = true;
    if (made_new)
        ereport(LOG, (errmsg("pg_batchguard: this server is instance %s of its cluster", cached_id),
                      errdetail("A new instance id is made at the first start of a data "
                                "directory: after initdb, pg_basebackup, a file-level copy, "
                                "pg_rewind or pg_upgrade. Backup folders of other instances "
                                "are never swept by this one.")));
    std::memcpy(id, cached_id, 17);
    return true;
}

const std::string& server_instance() {
    static std::string instance;
    if (instance.empty()) {
        char id[17];
        const bool ok = pg_call([&] { return server_instance_id(id, ERROR); });
        if (!ok) throw Error(sqlstate::kIoError, "could not read the server instance");
        instance = id;
    }
    return instance;
}

}  // namespace batchguard::pg
