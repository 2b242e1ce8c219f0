// File storage: who owns each folder of batchguard.backup_directory. A folder's owner is
// written in its marker file (server instance, system identifier, database, installation
// token); this server sweeps, quarantines and marks missing only in folders whose marker
// names it. Copies of the cluster sharing the directory (pg_basebackup, PITR, a standby
// on shared storage) write to "<oid>-<instance>" folders of their own; a folder carried
// over by pg_upgrade (another system identifier, the same installation token) is
// recognised and adopted. See docs/internals.md, "File storage: who owns a folder".
#pragma once
#include "pg/postgres.hpp"
#include "pg/spi.hpp"

#include "core/backup_folders.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace batchguard::backup {

enum class FolderOwner {
    kThisServer,   // its marker names this server instance
    kUpgraded,     // this database's, made before a pg_upgrade: ours once adopted
    kOtherServer,  // another copy of the cluster, or another cluster
    kUnclaimed,    // no marker: made by version 1.0, or by nobody yet
    kAbsent,       // no such folder
    kUnreadable,   // the marker cannot be read (permissions): ownership unknown
};

struct Folder {
    std::string name;  // "<oid>" or "<oid>-<instance>"
    std::string path;  // <backup_directory>/<name>
    FolderOwner owner = FolderOwner::kAbsent;
    std::optional<FolderMarker> marker;
    int error = 0;  // errno of kUnreadable
};

// The token of this database's installation of the extension (batchguard.installation),
// or "" where the schema has none (a database still at 1.0).
std::string installation_token(pg::SpiSession& spi);

// The backup directory's folders as this server and database see them; each folder's
// marker is read once per view (one SQL call).
class FolderView {
  public:
    explicit FolderView(std::string token) : token_(std::move(token)) {}

    const std::string& token() const { return token_; }
    const Folder& folder(const std::string& name);

    // Makes a folder ours: claims an unclaimed one (or creates it), adopts an upgraded one.
    // False when another server owns it or it cannot be read.
    bool take(const std::string& name);

    // The folder this database writes new file backups to, created and claimed if needed:
    // "<oid>" unless another server owns it, else "<oid>-<this instance>".
    std::string writable();

    // Names of every folder of this database ("<oid>", "<oid>-*") in the backup directory.
    std::vector<std::string> database_folders();

  private:
    void forget(const std::string& name) { cache_.erase(name); }
    std::string token_;
    std::map<std::string, Folder> cache_;
};

// <backup_directory>/<folder>
std::string folder_path(const std::string& folder);

// Moves <folder>/<name> into <folder>/quarantine/ (its time set to now, when the grace
// period starts). Returns 0 or the errno of the failure.
int quarantine_file(const std::string& folder_path, const std::string& name);

// Deletes the quarantined files of a folder older than batchguard.quarantine_period.
struct PurgeResult {
    std::int64_t removed = 0, failed = 0;
};
PurgeResult purge_quarantine(const std::string& folder_path);

// The legal-hold marker "<backup id>-<xid>.hold" next to a backup file: what keeps the
// file when its database is dropped. Best effort: failures are logged.
void write_hold_marker(const std::string& folder_path, const std::string& stem);
void remove_hold_marker(const std::string& folder_path, const std::string& stem);

// Logs once per backend that a folder of this database belongs to another server (or cannot
// be read), instead of maintaining it.
void report_foreign_folder(const Folder& folder);

}  // namespace batchguard::backup
