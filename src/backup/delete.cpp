// delete_preview and delete_with_backup (see docs/api.md, "Backups").
#include "backup/dynamic_sql.hpp"
#include "backup/export.hpp"
#include "backup/protect.hpp"
#include "backup/row_plan.hpp"
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

#include <map>
#include <optional>
#include <string>
#include <vector>

using namespace batchguard;
using namespace batchguard::backup;

namespace {

pg::Statement result_sql{
    "SELECT pg_catalog.jsonb_build_object('backup', pg_catalog.to_jsonb(b), 'deleted', $2,"
    "                                     'tables', $3::pg_catalog.jsonb)"
    "  FROM batchguard.backups b WHERE b.backup_id = $1::pg_catalog.uuid",
    {TEXTOID, INT8OID, TEXTOID}};

Datum ids_arg(FunctionCallInfo fcinfo, int n) {
    pg::require_not_null(fcinfo, n, "ids");
    const Datum ids = PG_GETARG_DATUM(n);
    pg::require_array_within_limit(ids, "ids");
    if (pg::text_array_without_nulls(ids, "ids").empty())
        throw Error(sqlstate::kInvalidParameterValue, "ids must not be empty", {},
                    "Pass the primary keys of the rows to delete.");
    return ids;
}

Oid source_arg(FunctionCallInfo fcinfo) {
    pg::require_not_null(fcinfo, 0, "source");
    return PG_GETARG_OID(0);
}

pg::Statement xact_counters{
    "SELECT r, pg_catalog.pg_stat_get_xact_tuples_deleted(r),"
    "       pg_catalog.pg_stat_get_xact_tuples_updated(r)"
    "  FROM pg_catalog.unnest($1::pg_catalog.oid[]) r",
    {OIDARRAYOID}};

struct Counters {
    std::int64_t deleted = 0, updated = 0;
};

// This transaction's own row counters of every relation the plan touches (each leaf
// partition on its own): what the DELETE really did.
std::map<Oid, Counters> read_counters(const RowPlan& plan) {
    std::vector<Datum> oids;
    for (const auto& [relation, expected] : plan.expected())
        oids.push_back(ObjectIdGetDatum(relation));
    const Datum array = pg::pg_call([&] {
        return PointerGetDatum(construct_array(oids.data(), static_cast<int>(oids.size()), OIDOID,
                                               sizeof(Oid), true, TYPALIGN_INT));
    });
    std::map<Oid, Counters> out;
    pg::SpiSession spi;
    pg::Rows rows = spi.execute(xact_counters, {pg::Arg::of(array)});
    for (std::uint64_t r = 0; r < rows.size(); ++r)
        out[DatumGetObjectId(rows.datum(r, 1).value())] = {rows.int8(r, 2).value(),
                                                           rows.int8(r, 3).value()};
    return out;
}

// Belt and braces: the DELETE removed exactly the rows backed up and changed only rows
// whose old values are backed up; otherwise raise, and nothing is deleted.
void compare_counters(const RowPlan& plan, const std::map<Oid, Counters>& before,
                      const std::map<Oid, Counters>& after) {
    for (const auto& [relation, expected] : plan.expected()) {
        const Counters b = before.count(relation) ? before.at(relation) : Counters{};
        const Counters a = after.count(relation) ? after.at(relation) : Counters{};
        const std::int64_t deleted = a.deleted - b.deleted, updated = a.updated - b.updated;
        if (deleted == expected.deleted && updated >= expected.updated_min &&
            updated <= expected.updated_max)
            continue;
        throw Error(sqlstate::kObjectNotInPrerequisiteState,
                    "the delete removed or changed rows of table " + plan.table_of(relation) +
                        " that are not in its backup",
                    "The delete removed " + std::to_string(deleted) + " and changed " +
                        std::to_string(updated) + " rows of it; the backup holds " +
                        std::to_string(expected.deleted) + " removed and " +
                        std::to_string(expected.updated_min) + " changed rows.",
                    "Row security hides rows from you that foreign-key actions reach, or a "
                    "trigger changed rows of these tables. Nothing was deleted.");
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
        pg::SpiSession spi(pg::SpiSession::Access::kReadOnly, pg::SpiSession::Identity::kAsCaller,
                           pg::SpiSession::SearchPath::kCallers);
        const RowPlan plan = RowPlan::build(spi, source, ids, true, PlanMode::kPreview);
        // The rows' size on disk, an estimate of what the backup holds.
        auto bytes_of = [&](const PlanTable& t, const RowSet& set, const std::vector<int>& rows) {
            std::int64_t total = 0;
            for (Oid leaf : t.leaves) {
                RowSet some;
                for (int r : rows)
                    if (set.rows[static_cast<std::size_t>(r)].relation == leaf)
                        some.rows.push_back(set.rows[static_cast<std::size_t>(r)]);
                if (some.rows.empty()) continue;
                pg::Rows b = run_dynamic(
                    "SELECT coalesce(pg_catalog.sum(pg_catalog.pg_column_size(bg_row.*)), 0)"
                    "::pg_catalog.int8 FROM ONLY " +
                        t.leaf_names.at(leaf) +
                        " bg_row WHERE bg_row.ctid OPERATOR(pg_catalog.=) ANY ($1)",
                    {{TIDARRAYOID, pg::Arg::of(RowPlan::tid_array(some, leaf, 0, true))}}, true);
                total += b.int8(0, 1).value();
            }
            return total;
        };
        for (const PlanTable& t : plan.tables()) {
            pg::check_for_interrupts();
            std::vector<int> all(t.deleted.size());
            for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
            if (!all.empty() || &t == &plan.tables().front())
                lines.push_back({t.name, "delete", static_cast<std::int64_t>(all.size()),
                                 bytes_of(t, t.deleted, all)});
            std::vector<int> set_null, set_default;
            for (std::size_t i = 0; i < t.changed.size(); ++i) {
                bool nulls = false;
                for (int e : t.changed_by[i])
                    nulls = nulls || plan.edges()[static_cast<std::size_t>(e)].action == 'n';
                (nulls ? set_null : set_default).push_back(static_cast<int>(i));
            }
            if (!set_null.empty())
                lines.push_back({t.name, "set null", static_cast<std::int64_t>(set_null.size()),
                                 bytes_of(t, t.changed, set_null)});
            if (!set_default.empty())
                lines.push_back({t.name, "set default",
                                 static_cast<std::int64_t>(set_default.size()),
                                 bytes_of(t, t.changed, set_default)});
            if (t.blocking > 0) lines.push_back({t.name, "restrict", t.blocking, 0});
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

    // 1. What the DELETE does, row by row; every row it removes or changes is locked
    //    (parents first), so none can change or be added under it until commit. Refuses
    //    what cannot be backed up faithfully.
    std::optional<RowPlan> plan;
    {
        pg::SpiSession spi(pg::SpiSession::Access::kReadWrite, pg::SpiSession::Identity::kAsCaller,
                           pg::SpiSession::SearchPath::kCallers);
        plan.emplace(RowPlan::build(spi, source, ids, true, PlanMode::kDelete));
    }
    // 2. Export what is locked, in a snapshot taken after the locks.
    ExportResult exported;
    {
        FreshSnapshot snapshot;
        exported = export_backup(request, &*plan);
    }
    // 3. The DELETE of exactly the selected rows (by ctid: they are locked), under the
    //    caller's search path for the caller's triggers; then compare what it did.
    const std::map<Oid, Counters> before = read_counters(*plan);
    std::int64_t deleted = 0;
    {
        // The backup above holds these rows: protected tables' triggers skip them.
        std::vector<Oid> relations;
        for (const PlanTable& t : plan->tables()) {
            relations.push_back(t.relid);
            relations.insert(relations.end(), t.leaves.begin(), t.leaves.end());
        }
        const ProtectionPause pause(relations);
        pg::SpiSession spi(pg::SpiSession::Access::kReadWrite, pg::SpiSession::Identity::kAsCaller,
                           pg::SpiSession::SearchPath::kCallers);
        const PlanTable& s = plan->tables().front();
        if (!s.partitioned) {
            run_dynamic(
                "DELETE FROM ONLY " + s.name +
                    " bg_row WHERE bg_row.ctid OPERATOR(pg_catalog.=) ANY ($1)",
                {{TIDARRAYOID, pg::Arg::of(RowPlan::tid_array(s.deleted, s.relid, -1, false))}},
                false);
        } else {
            std::vector<Datum> oids, tids;
            for (const RowSet::Row& r : s.deleted.rows) {
                if (r.via != -1) continue;
                oids.push_back(ObjectIdGetDatum(r.relation));
                tids.push_back(PointerGetDatum(&r.tid));
            }
            Datum oid_array = 0, tid_array = 0;
            pg::pg_call([&] {
                oid_array =
                    PointerGetDatum(construct_array(oids.data(), static_cast<int>(oids.size()),
                                                    OIDOID, sizeof(Oid), true, TYPALIGN_INT));
                tid_array = PointerGetDatum(
                    construct_array(tids.data(), static_cast<int>(tids.size()), TIDOID,
                                    sizeof(ItemPointerData), false, TYPALIGN_SHORT));
            });
            run_dynamic(
                "DELETE FROM " + s.name +
                    " bg_row USING ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS "
                    "bg_k(o, t)"
                    " WHERE bg_row.tableoid OPERATOR(pg_catalog.=) bg_k.o"
                    " AND bg_row.ctid OPERATOR(pg_catalog.=) bg_k.t",
                {{OIDARRAYOID, pg::Arg::of(oid_array)}, {TIDARRAYOID, pg::Arg::of(tid_array)}},
                false);
        }
        deleted = static_cast<std::int64_t>(last_processed());
    }
    compare_counters(*plan, before, read_counters(*plan));

    std::string tables = "{";
    for (std::size_t i = 0; i < exported.row_counts.size(); ++i) {
        if (i > 0) tables += ",";
        append_json_string(tables, exported.row_counts[i].first);
        tables += ":{\"action\":";
        append_json_string(tables, exported.actions[i]);
        tables += ",\"rows\":" + std::to_string(exported.row_counts[i].second) +
                  ",\"changed\":" + std::to_string(exported.changed[i]) + "}";
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
