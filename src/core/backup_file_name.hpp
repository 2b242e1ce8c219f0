// Names under the backup directory: <database oid>/ folders and
// <backup id>-<creating xid>.jsonl.zst files (see docs/backup-format.md). Only names that
// match exactly are ever touched by maintenance.
#pragma once
#include "core/pure.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace batchguard {

struct BackupFileName {
    std::string backup_id;  // lowercase uuid text, as uuid_out writes it
    std::uint64_t xid = 0;  // the creating transaction's full (64-bit) id
};

// Decimal digits without a leading zero (except "0" itself) that fit in `max`, or nullopt:
// the only numbers names under the backup directory and its records may carry.
std::optional<std::uint64_t> parse_decimal(std::string_view digits, std::uint64_t max);

bool is_lower_hex(char c);

// A uuid as uuid_out writes it: lowercase hex digits and dashes, 36 characters.
bool is_lowercase_uuid(std::string_view s);

// The parts of a backup file's name, or nullopt if it is not exactly our pattern.
std::optional<BackupFileName> parse_backup_file_name(std::string_view name);

// The database oid a folder of the backup directory is named by (decimal digits, no
// leading zero, fits in 32 bits), or nullopt.
std::optional<std::uint32_t> parse_database_folder_name(std::string_view name);

}  // namespace batchguard
