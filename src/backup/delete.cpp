// delete_preview and delete_with_backup (see docs/api.md, "Backups").
#include "backup/dynamic_sql.hpp"
#include "backup/export.hpp"
#include "backup/graph.hpp"
#include "backup/store.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"
#include "pg/result_row.hpp"
#include "pg/transaction.hpp"

extern "C" {
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"
}

#include <string>
#include <vector>

using namespace batchguard;
using namespace batchguard::backup;

namespace {

pg::Statement privileges_of_caller{
    "SELECT pg_catalog.row_security_active($1), pg_catalog.has_table_privilege($1, 'SELECT'),"
    "       pg_catalog.has_any_column_privilege($1, 'UPDATE')",
    {OIDOID}};

pg::Statement result_sql{
    "SELECT pg_catalog.jsonb_build_object('backup', pg_catalog.to_jsonb(b), 'deleted', $2,"
    "                                     'tables', $3::pg_catalog.jsonb)"
    "  FROM batchguard.backups b WHERE b.backup_id = $1::pg_catalog.uuid",
    {TEXTOID, INT8OID, TEXTOID}};

Datum ids_arg(FunctionCallInfo fcinfo, int n) {
    pg::require_not_null(fcinfo, n, "ids");
    const Datum ids = PG_GETARG_DATUM(n);
    if (pg::text_array_without_nulls(ids, "ids").empty())
        throw Error(sqlstate::kInvalidParameterValue, "ids must not be empty", {},
                    "Pass the primary keys of the rows to delete.");
    return ids;
}

Oid source_arg(FunctionCallInfo fcinfo) {
    pg::require_not_null(fcinfo, 0, "source");
    return PG_GETARG_OID(0);
}

// Foreign-key actions run as the referencing table's owner and bypass row security: a
// backup taken with the caller's privileges could miss rows the delete removes. Table
// names are in the catalog for everyone: naming the table reveals no row.
void require_fully_visible(pg::SpiSession& spi, const BackupGraph& graph) {
    for (std::size_t i = 1; i < graph.tables().size(); ++i) {
        pg::Rows r = spi.execute(privileges_of_caller,
                                 {pg::Arg::of(ObjectIdGetDatum(graph.tables()[i].relid))});
        const bool row_security = r.boolean(0, 1).value_or(true);
        if (row_security || !r.boolean(0, 2).value_or(false))
            throw Error(sqlstate::kInsufficientPrivilege,
                        "delete_with_backup cannot back up every row this delete would reach",
                        "Table " + graph.tables()[i].name +
                            ", which the delete reaches through a foreign key, " +
                            (row_security ? "has row security active for you."
                                          : "is not readable by you (no SELECT privilege)."),
                        "Foreign-key actions bypass row security, so a backup made with your "
                        "privileges could miss rows: delete as a role that reads every row of "
                        "the referencing tables.");
    }
}

// The statement's rows of one graph query, wrapped: count and JSON bytes, or row locks.
std::string counting(const RowQuery& q) {
    return "SELECT pg_catalog.count(*)::pg_catalog.int8,"
           " coalesce(pg_catalog.sum(pg_catalog.octet_length(bg_q.r)), 0)::pg_catalog.int8"
           " FROM (" +
           q.sql + ") bg_q(r, k)";
}

std::string locking(const RowQuery& q) {
    return "SELECT pg_catalog.count(*)::pg_catalog.int8 FROM (" + q.sql +
           " FOR UPDATE OF bg_row) bg_q";
}

// The row locks are SELECT ... FOR UPDATE, which needs UPDATE on the table: PostgreSQL
// only says "permission denied", so say why when that is the reason.
// (Asked before the lock statement: nothing runs after a caught error but the re-raise.)
pg::Rows lock_rows(pg::SpiSession& spi, const BackupGraph& graph, const RowQuery& q, Datum ids) {
    const GraphTable& t = graph.tables()[q.table];
    const bool updatable =
        spi.execute(privileges_of_caller, {pg::Arg::of(ObjectIdGetDatum(t.relid))})
            .boolean(0, 3)
            .value_or(true);
    try {
        return run_dynamic(locking(q), {{TEXTARRAYOID, pg::Arg::of(ids)}}, false);
    } catch (const pg::PgError& e) {
        if (e.data()->sqlerrcode != ERRCODE_INSUFFICIENT_PRIVILEGE || updatable) throw;
        throw Error(sqlstate::kInsufficientPrivilege,
                    e.data()->message != nullptr ? e.data()->message : "permission denied",
                    "delete_with_backup locks every row the delete reaches (SELECT ... FOR "
                    "UPDATE) before it backs them up, which needs the UPDATE privilege on " +
                        t.name + ".",
                    "Grant UPDATE on " + t.name + ", or delete as a role that has it.");
    }
}

// A fresh snapshot for the export after the locks: under READ COMMITTED it sees every row
// committed before the locks were granted (a child inserted just before is backed up).
class FreshSnapshot {
  public:
    FreshSnapshot() {
        pg::pg_call([] {
            CommandCounterIncrement();
            PushActiveSnapshot(GetTransactionSnapshot());
        });
    }
    ~FreshSnapshot() {
        if (std::uncaught_exceptions() > 0) return;  // the abort pops it
        try {
            pg::pg_call([] { PopActiveSnapshot(); });
        } catch (...) {
        }
    }
    FreshSnapshot(const FreshSnapshot&) = delete;
    FreshSnapshot& operator=(const FreshSnapshot&) = delete;
};

}  // namespace

BATCHGUARD_FUNCTION(batchguard_delete_preview) {
    const Oid source = source_arg(fcinfo);
    const Datum ids = ids_arg(fcinfo, 1);
    pg::pg_call([&] { InitMaterializedSRF(fcinfo, 0); });
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    struct Line {
        std::string table, action;
        std::int64_t rows = 0, bytes = 0;
    };
    std::vector<Line> lines;
    {
        pg::SpiSession spi(pg::SpiSession::Access::kReadOnly, pg::SpiSession::Identity::kAsCaller);
        const BackupGraph graph = BackupGraph::build(spi, source, true, true, GraphMode::kPreview);
        for (const GraphTable& t : graph.tables()) lines.push_back({t.name, t.action});
        for (const RowQuery& q : graph.queries()) {
            pg::check_for_interrupts();
            pg::Rows r = run_dynamic(counting(q), {{TEXTARRAYOID, pg::Arg::of(ids)}}, true);
            lines[q.table].rows += r.int8(0, 1).value();
            lines[q.table].bytes += r.int8(0, 2).value();
        }
    }
    pg::ResultRow row(rsinfo->setDesc);  // the installed OUT columns, by name
    for (const Line& line : lines) {
        if (line.action == "restrict" && line.rows == 0) continue;  // nothing blocks
        row.set("table_name", pg::text_datum(line.table));
        row.set("action", pg::text_datum(line.action));
        row.set("rows", Int64GetDatum(line.rows));
        row.set("estimated_bytes", Int64GetDatum(line.bytes));
        pg::pg_call([&] {
            tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row.values(), row.nulls());
        });
    }
    return static_cast<Datum>(0);
}

BATCHGUARD_FUNCTION(batchguard_delete_with_backup) {
    const Oid source = source_arg(fcinfo);
    const Datum ids = ids_arg(fcinfo, 1);
    ExportRequest request;
    request.source = source;
    request.ids = ids;
    request.for_delete = true;
    if (!PG_ARGISNULL(2)) request.retention = PG_GETARG_DATUM(2);
    if (const auto label = pg::text_arg(fcinfo, 3)) request.label = std::string(*label);
    pg::require_read_committed("delete_with_backup", kLockedRowsHint);
    pg::pg_call([] { PreventCommandIfReadOnly("delete_with_backup()"); });
    const std::string owner = pg::current_owner();

    // 1. Refuse what cannot be backed up faithfully; lock every row the delete reaches,
    //    parents first, so that no referencing row can be added until commit.
    std::string delete_sql;
    std::int64_t selected = 0;  // source rows selected by ids (not reached through a tree)
    {
        pg::SpiSession spi(pg::SpiSession::Access::kReadWrite, pg::SpiSession::Identity::kAsCaller);
        const BackupGraph graph = BackupGraph::build(spi, source, true, true, GraphMode::kDelete);
        require_fully_visible(spi, graph);
        for (const RowQuery& q : graph.queries(true)) {
            pg::check_for_interrupts();
            pg::Rows locked = lock_rows(spi, graph, q, ids);
            if (q.table == 0 && q.edge < 0) selected = locked.int8(0, 1).value();
        }
        delete_sql = graph.delete_sql();
    }
    // 2. Export what is locked, in a snapshot taken after the locks.
    ExportResult exported;
    {
        FreshSnapshot snapshot;
        exported = export_backup(request);
    }
    // 3. Exactly that DELETE. The rows are locked, so it removes what was exported; a
    //    different count means a row appeared in between (a new id): refuse.
    std::int64_t deleted = 0;
    {
        pg::SpiSession spi(pg::SpiSession::Access::kReadWrite, pg::SpiSession::Identity::kAsCaller);
        run_dynamic(delete_sql, {{TEXTARRAYOID, pg::Arg::of(ids)}}, false);
        deleted = static_cast<std::int64_t>(last_processed());
    }
    if (deleted != selected)
        throw Error(sqlstate::kObjectNotInPrerequisiteState,
                    "the rows to delete changed while delete_with_backup ran",
                    std::to_string(selected) +
                        " rows of the source were locked and backed up; "
                        "the delete removed " +
                        std::to_string(deleted) + ".",
                    "Retry: nothing was deleted.");

    std::string tables = "{";
    for (std::size_t i = 0; i < exported.row_counts.size(); ++i) {
        if (i > 0) tables += ",";
        append_json_string(tables, exported.row_counts[i].first);
        tables += ":{\"action\":";
        append_json_string(tables, exported.actions[i]);
        tables += ",\"rows\":" + std::to_string(exported.row_counts[i].second) + "}";
    }
    tables += "}";
    Datum result = 0;
    {
        pg::SpiSession spi;
        BackupRecord record;
        record.backup_id = exported.backup_id;
        record.owner = owner;
        std::string source_name;
        append_json_string(source_name, exported.row_counts.front().first);
        audit(spi, record, owner, "delete_with_backup",
              "{\"source\":" + source_name + ",\"deleted\":" + std::to_string(deleted) +
                  ",\"rows\":" + std::to_string(exported.total_rows) + ",\"tables\":" + tables +
                  "}");
        pg::Rows r = spi.execute(result_sql, {pg::Arg::text(exported.backup_id),
                                              pg::Arg::int8(deleted), pg::Arg::text(tables)});
        result = r.datum_for_caller(0, 1).value();
    }
    return result;
}
