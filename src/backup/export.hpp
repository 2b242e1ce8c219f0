// The export engine: walks the foreign-key graph, streams the rows as JSON lines through
// zstd into a new backup file tied to the transaction, writes header and trailer, and
// records the batchguard.backups row. delete_with_backup and restore build on it.
#pragma once
#include "pg/postgres.hpp"

#include "core/backup_format.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace batchguard::backup {

class RowPlan;

struct ExportRequest {
    Oid source = InvalidOid;
    std::optional<Datum> ids;  // text[]; nullopt = every row the caller can read
    bool include_children = true;
    std::optional<Datum> retention;  // interval; nullopt = batchguard.backup_retention
    std::optional<std::string> label;
    bool for_delete = false;  // follow what a DELETE of the source rows removes or changes
};

struct ExportResult {
    std::string backup_id;
    Datum row = 0;  // the batchguard.backups row, in the caller's memory context
    std::vector<std::pair<std::string, std::int64_t>> row_counts;
    std::int64_t total_rows = 0;
    std::vector<std::string> actions;   // for_delete: per table, in row_counts' order
    std::vector<std::int64_t> changed;  // for_delete: per table, rows changed (not removed)
};

// Runs the export with the caller's privileges and row security; raises on any failure
// (the transaction's abort then removes the file). plan: the rows to export, computed (and
// locked) by the caller; nullptr: computed here.
ExportResult export_backup(const ExportRequest& request, const RowPlan* plan = nullptr);

// Throws export_backup's error (22023) for a retention it would refuse (not positive, or
// beyond batchguard.max_backup_retention); nullopt is the default retention. For callers
// that must refuse before they change anything (purge_with_backup commits its batch first).
void validate_retention(std::optional<Datum> retention);

// A backup whose row lines were rendered before it is written: the rows that DELETE
// statements removed from protected tables, collected by their triggers (protect.cpp).
struct CollectedBackup {
    std::string backup_id;  // chosen when the first row was collected
    std::string owner;      // current_owner() of the deletes
    Oid owner_role = InvalidOid;
    std::optional<Datum> retention;  // interval; nullopt = batchguard.backup_retention
    std::vector<BackupTable> tables;
    std::vector<std::int64_t> counts;  // per table
    std::string delete_actions;        // JSON, as delete_with_backup records it
    std::string audit_detail;          // JSON
    std::uint64_t bytes = 0;           // of the row lines
    // Writes every row line (each ending in '\n', rendered under PinnedOutputSettings).
    std::function<void(const std::function<void(std::string_view)>&)> write_rows;
};

// Writes a collected backup through the same storage, quota and audit as export_backup,
// made durable before it returns; raises on any failure.
ExportResult write_collected_backup(const CollectedBackup& backup);

}  // namespace batchguard::backup
