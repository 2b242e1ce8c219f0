// SQL whose text is built from catalog names (quote_identifier'd), never from user input:
// the statements of delete_preview, delete_with_backup and restore_backup that name the
// caller's tables. Run inside an open pg::SpiSession.
#pragma once
#include "pg/postgres.hpp"
#include "pg/spi.hpp"

#include <string>
#include <utility>
#include <vector>

namespace batchguard::backup {

struct DynamicArg {
    Oid type;
    pg::Arg value;
};

// Settings (name, value) in force only while a statement is planned.
using PlannerSettings = std::vector<std::pair<const char*, const char*>>;

// read_only: the calling query's snapshot; otherwise a new snapshot for the statement.
// planner: settings the statement is planned under; its execution, and whatever it fires
// (triggers, their queries' plans), runs under the caller's settings. Only for a statement
// without parameters (args empty), whose one plan the plan cache then reuses.
pg::Rows run_dynamic(const std::string& sql, const std::vector<DynamicArg>& args, bool read_only,
                     const PlannerSettings& planner = {});

// The number of rows the last run_dynamic processed.
std::uint64_t last_processed();

// A jsonb datum (current memory context) from JSON text in the server encoding.
Datum jsonb_datum(const std::string& json);

// Why delete_with_backup and purge_with_backup need READ COMMITTED
// (pg::require_read_committed).
inline constexpr const char* kLockedRowsHint =
    "Run it in a READ COMMITTED transaction: the rows it locks must be read again after the "
    "locks are taken, which a transaction snapshot cannot do.";

}  // namespace batchguard::backup
