// Who owns a folder of the backup directory, in pure C++: the names maintenance may
// touch (database folders, hold and quarantine entries, folders of dropped databases) and
// the two small text records that tell copies of a cluster apart — the server instance
// kept in the data directory and the owner marker kept in each folder
// (see docs/internals.md, "File storage: who owns a folder").
#pragma once
#include "core/pure.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace batchguard {

// A server instance id: 16 lowercase hex digits.
bool is_instance_id(std::string_view s);

// A database folder: "<oid>" (the first server to use it) or "<oid>-<instance>" (a copy of
// the cluster sharing the directory writes there instead).
struct BackupFolderName {
    std::uint32_t database = 0;
    std::string instance;  // empty for "<oid>"
};
std::optional<BackupFolderName> parse_backup_folder_name(std::string_view name);
std::string backup_folder_name(std::uint32_t database, std::string_view instance);

// The folder of a dropped database while it is quarantined: "<folder>.dropped-<unix time>".
struct DroppedFolderName {
    std::string folder;
    std::int64_t dropped_at = 0;
};
std::optional<DroppedFolderName> parse_dropped_folder_name(std::string_view name);
std::string dropped_folder_name(std::string_view folder, std::int64_t dropped_at);

// "<backup id>-<xid>.hold": the backup file of the same stem is on legal hold (kept even
// when its database is dropped).
inline constexpr std::string_view kHoldSuffix = ".hold";
inline constexpr std::string_view kQuarantineFolder = "quarantine";
inline constexpr std::string_view kOwnerMarkerFile = "pg_batchguard.owner";
inline constexpr std::string_view kInstanceFile = "pg_batchguard.instance";

// Who owns a folder: the server instance, its system, the database, and the token of the
// database's installation of the extension (carried by pg_upgrade, not by pg_dump).
struct FolderMarker {
    std::string instance;
    std::uint64_t system_identifier = 0;
    std::uint32_t database = 0;
    std::string token;  // may be empty (a database still at 1.0)
    // Set when the folder was adopted after pg_upgrade: the system that wrote it before.
    std::uint64_t previous_system_identifier = 0;
};
std::string format_folder_marker(const FolderMarker& marker);
std::optional<FolderMarker> parse_folder_marker(std::string_view text);

// The server instance record ($PGDATA/pg_batchguard.instance): valid only in the data
// directory (device, inode) and system it was made for; a copy makes a new one.
struct InstanceRecord {
    std::string instance;
    std::uint64_t system_identifier = 0;
    std::uint64_t device = 0, inode = 0;
};
std::string format_instance_record(const InstanceRecord& record);
std::optional<InstanceRecord> parse_instance_record(std::string_view text);

}  // namespace batchguard
