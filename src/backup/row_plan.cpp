#include "backup/row_plan.hpp"

#include "core/error.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "access/transam.h"
#include "catalog/pg_class.h"
#include "utils/datum.h"
#include "utils/typcache.h"
}

#include <algorithm>
#include <deque>
#include <set>

namespace batchguard::backup {

namespace {

pg::Statement table_info{
    "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), c.relkind::pg_catalog.text,"
    "       c.relowner, pg_catalog.pg_get_userbyid(c.relowner)::pg_catalog.text,"
    "       pg_catalog.has_table_privilege(c.oid, 'SELECT'),"
    "       pg_catalog.has_any_column_privilege(c.oid, 'UPDATE'),"
    "       pg_catalog.has_table_privilege(c.oid, 'INSERT')"
    "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.oid = $1",
    {OIDOID}};

pg::Statement columns_of{
    "SELECT a.attname::pg_catalog.text, pg_catalog.format_type(a.atttypid, a.atttypmod),"
    "       a.atttypid"
    "  FROM pg_catalog.pg_attribute a"
    " WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
    {OIDOID}};

pg::Statement primary_key_of{
    "SELECT a.attname::pg_catalog.text, pg_catalog.format_type(a.atttypid, a.atttypmod),"
    "       a.atttypid, a.atttypmod"
    "  FROM pg_catalog.pg_index i"
    "  CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY"
    "       AS k(attnum, n)"
    "  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
    " WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.n",
    {OIDOID}};

// The relations that hold a table's rows: itself, or the leaf partitions.
pg::Statement leaves_of{
    "SELECT c.oid, pg_catalog.format('%I.%I', n.nspname, c.relname)"
    "  FROM (SELECT $1 AS relid UNION SELECT relid FROM pg_catalog.pg_partition_tree($1)) t"
    "  JOIN pg_catalog.pg_class c ON c.oid = t.relid"
    "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind = 'r'",
    {OIDOID}};

// Top-level foreign keys that reference the table, one of its partitions or one of its
// ancestors (a partition's rows are referenced through its partitioned table).
pg::Statement references_to{
    "SELECT c.conrelid, c.conname::pg_catalog.text,"
    "       ARRAY(SELECT a.attname::pg_catalog.text"
    "               FROM pg_catalog.unnest(c.conkey) WITH ORDINALITY AS k(n, o)"
    "               JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n"
    "              ORDER BY k.o),"
    "       ARRAY(SELECT a.attname::pg_catalog.text"
    "               FROM pg_catalog.unnest(c.confkey) WITH ORDINALITY AS k(n, o)"
    "               JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n"
    "              ORDER BY k.o),"
    "       ARRAY(SELECT pg_catalog.format('OPERATOR(%I.%s)', s.nspname, o.oprname)"
    "               FROM pg_catalog.unnest(c.conpfeqop) WITH ORDINALITY AS k(op, i)"
    "               JOIN pg_catalog.pg_operator o ON o.oid = k.op"
    "               JOIN pg_catalog.pg_namespace s ON s.oid = o.oprnamespace"
    "              ORDER BY k.i),"
    "       c.confdeltype::pg_catalog.text,"
    "       ARRAY(SELECT a.attname::pg_catalog.text"
    "               FROM pg_catalog.unnest(coalesce(c.confdelsetcols, c.conkey))"
    "                    WITH ORDINALITY AS k(n, o)"
    "               JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n"
    "              ORDER BY k.o),"
    "       ARRAY(SELECT c.confrelid"
    "             UNION SELECT t.relid FROM pg_catalog.pg_partition_tree(c.confrelid) t)"
    "  FROM pg_catalog.pg_constraint c"
    " WHERE c.contype = 'f' AND c.conparentid = 0"
    "   AND (c.confrelid = $1"
    "        OR c.confrelid IN (SELECT relid FROM pg_catalog.pg_partition_tree($1))"
    "        OR c.confrelid IN (SELECT relid FROM pg_catalog.pg_partition_ancestors($1)))"
    " ORDER BY c.conrelid, c.conname",
    {OIDOID}};

// Foreign keys whose ON UPDATE action would propagate a change of these columns.
pg::Statement update_actions_on{
    "SELECT c.conname::pg_catalog.text, c.conrelid::pg_catalog.regclass::pg_catalog.text"
    "  FROM pg_catalog.pg_constraint c"
    " WHERE c.contype = 'f' AND c.confrelid = $1 AND c.confupdtype IN ('c', 'n', 'd')"
    "   AND EXISTS (SELECT FROM pg_catalog.unnest(c.confkey) k(n)"
    "                 JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid"
    "                                               AND a.attnum = k.n"
    "                WHERE a.attname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($2))"
    " LIMIT 1",
    {OIDOID, TEXTARRAYOID}};

pg::Statement operator_name{
    "SELECT pg_catalog.format('OPERATOR(%I.%s)', s.nspname, o.oprname)"
    "  FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace s ON s.oid = o.oprnamespace"
    " WHERE o.oid = $1",
    {OIDOID}};

std::string quote(const std::string& identifier) {
    const char* quoted = pg::pg_call([&] { return quote_identifier(identifier.c_str()); });
    return quoted;
}

std::vector<std::string> strings_of(const pg::Rows& rows, std::uint64_t row, int column) {
    std::vector<std::string> out;
    for (const auto& item : pg::text_array_elements(rows.datum(row, column).value()))
        out.emplace_back(item.value_or(""));
    return out;
}

std::vector<Oid> oids_of(const pg::Rows& rows, std::uint64_t row, int column) {
    std::vector<Oid> out;
    const Datum array = rows.datum(row, column).value();
    pg::pg_call([&] {
        ArrayType* a = DatumGetArrayTypeP(array);
        Datum* items = nullptr;
        bool* nulls = nullptr;
        int n = 0;
        deconstruct_array(a, OIDOID, sizeof(Oid), true, TYPALIGN_INT, &items, &nulls, &n);
        for (int i = 0; i < n; ++i) out.push_back(DatumGetObjectId(items[i]));
    });
    return out;
}

std::uint64_t tid_key(const ItemPointerData& tid) {
    return (static_cast<std::uint64_t>(ItemPointerGetBlockNumberNoCheck(&tid)) << 16) |
           ItemPointerGetOffsetNumberNoCheck(&tid);
}

const char* action_name(char action) {
    switch (action) {
        case 'c':
            return "CASCADE";
        case 'n':
            return "SET NULL";
        case 'd':
            return "SET DEFAULT";
        case 'r':
            return "RESTRICT";
        default:
            return "NO ACTION";
    }
}

// Runs a plan's statement. The row locks are SELECT ... FOR UPDATE, which needs UPDATE on
// the table: PostgreSQL only says "permission denied", so say why when that is the reason.
// (Nothing runs after a caught error but the re-raise.)
void execute_plan(SPIPlanPtr prepared, Datum* values, bool lock, const PlanTable& table) {
    try {
        pg::pg_call([&] {
            const int rc = SPI_execute_plan(prepared, values, nullptr, !lock, 0);
            if (rc < 0) elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
        });
    } catch (const pg::PgError& e) {
        if (!lock || table.updatable || e.data()->sqlerrcode != ERRCODE_INSUFFICIENT_PRIVILEGE)
            throw;
        throw Error(sqlstate::kInsufficientPrivilege,
                    e.data()->message != nullptr ? e.data()->message : "permission denied",
                    "delete_with_backup locks every row the delete reaches (SELECT ... FOR "
                    "UPDATE) before it backs them up, which needs the UPDATE privilege on " +
                        table.name + ".",
                    "Grant UPDATE on " + table.name + ", or delete as a role that has it.");
    }
}

// Appends the rows of the last query (table oid, ctid, then the key set's columns) that
// `into` does not hold yet, found through `via`, their keys copied into `memory`; frees
// the query's result. Returns the new rows' indexes.
std::vector<int> collect_rows(MemoryContext memory, RowSet& into, int via, std::size_t n_keys) {
    const std::uint64_t count = SPI_processed;
    SPITupleTable* table = SPI_tuptable;
    std::vector<int> added;
    if (into.keys.size() != n_keys) {
        into.keys.assign(n_keys, {});
        into.key_nulls.assign(n_keys, {});
    }
    pg::pg_call([&] {
        MemoryContext old = MemoryContextSwitchTo(memory);
        for (std::uint64_t r = 0; r < count; ++r) {
            bool isnull = false;
            RowSet::Row row;
            row.relation =
                DatumGetObjectId(SPI_getbinval(table->vals[r], table->tupdesc, 1, &isnull));
            row.tid = *reinterpret_cast<ItemPointer>(
                DatumGetPointer(SPI_getbinval(table->vals[r], table->tupdesc, 2, &isnull)));
            row.via = via;
            if (into.find(row.relation, row.tid) >= 0) continue;
            const int index = into.add(row);
            for (std::size_t k = 0; k < n_keys; ++k) {
                Form_pg_attribute a = TupleDescAttr(table->tupdesc, static_cast<int>(k) + 2);
                Datum v =
                    SPI_getbinval(table->vals[r], table->tupdesc, static_cast<int>(k) + 3, &isnull);
                into.keys[k].push_back(isnull ? Datum(0) : datumCopy(v, a->attbyval, a->attlen));
                into.key_nulls[k].push_back(isnull);
            }
            added.push_back(index);
        }
        MemoryContextSwitchTo(old);
        SPI_freetuptable(table);
    });
    return added;
}

}  // namespace

int RowSet::find(Oid relation, const ItemPointerData& tid) const {
    auto it = by_tid.find(tid_key(tid));
    if (it == by_tid.end()) return -1;
    for (int r = it->second; r >= 0; r = rows[static_cast<std::size_t>(r)].next)
        if (rows[static_cast<std::size_t>(r)].relation == relation) return r;
    return -1;
}

int RowSet::add(const Row& row) {
    const int index = static_cast<int>(rows.size());
    rows.push_back(row);
    auto [it, fresh] = by_tid.emplace(tid_key(row.tid), index);
    if (!fresh) {  // another relation's row with the same ctid: chain it
        rows.back().next = it->second;
        it->second = index;
    }
    return index;
}

RowPlan RowPlan::build(pg::SpiSession& spi, Oid source, std::optional<Datum> ids,
                       bool include_children, PlanMode mode) {
    RowPlan plan;
    plan.mode_ = mode;
    // Key values outlive the SPI session (the export and the delete run in others).
    plan.memory_ = pg::pg_call([] {
        return AllocSetContextCreate(CurTransactionContext, "pg_batchguard row plan",
                                     ALLOCSET_DEFAULT_SIZES);
    });
    plan.discover(spi, source, include_children);
    plan.check_rules(spi);
    plan.streamed_ = mode == PlanMode::kExport && plan.edges_.empty();
    plan.select_source(spi, ids);
    plan.grow();
    if (mode != PlanMode::kExport) plan.changed_rows();
    return plan;
}

void RowPlan::discover(pg::SpiSession& spi, Oid source, bool include_children) {
    const Limits limits;
    std::map<Oid, int> index_of;
    std::vector<int> depth;
    auto add = [&](Oid relid, int level) {
        PlanTable t;
        t.relid = relid;
        pg::Rows info = spi.execute(table_info, {pg::Arg::of(ObjectIdGetDatum(relid))});
        if (info.empty()) throw Error(sqlstate::kUndefinedObject, "relation does not exist");
        t.name = info.text(0, 1).value();
        const char relkind = info.text(0, 2).value().at(0);
        t.owner_oid = DatumGetObjectId(info.datum(0, 3).value());
        t.owner = info.text(0, 4).value();
        if (tables_.empty()) {
            if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
                throw Error(sqlstate::kWrongObjectType, "\"" + t.name + "\" is not a table",
                            "export_backup reads ordinary and partitioned tables.");
            // pg_catalog, information_schema and the rest of initdb's relations
            if (relid < FirstNormalObjectId)
                throw Error(sqlstate::kWrongObjectType, "\"" + t.name + "\" is a system table",
                            "export_backup reads user tables.");
        }
        if (mode_ == PlanMode::kDelete && !info.boolean(0, 5).value_or(false))
            throw Error(sqlstate::kInsufficientPrivilege,
                        "delete_with_backup cannot back up every row this delete would reach",
                        "Table " + t.name +
                            ", which the delete reaches through a foreign key, is not readable "
                            "by you (no SELECT privilege).",
                        "Foreign-key actions run as the table's owner, so a backup made with "
                        "your privileges could miss rows: delete as a role that reads every row "
                        "of the referencing tables.");
        t.updatable = info.boolean(0, 6).value_or(true);
        t.writable = info.boolean(0, 7).value_or(false) || info.boolean(0, 6).value_or(false);
        t.partitioned = relkind == RELKIND_PARTITIONED_TABLE;
        pg::Rows columns = spi.execute(columns_of, {pg::Arg::of(ObjectIdGetDatum(relid))});
        for (std::uint64_t r = 0; r < columns.size(); ++r)
            t.columns.push_back({columns.text(r, 1).value(), columns.text(r, 2).value()});
        pg::Rows key = spi.execute(primary_key_of, {pg::Arg::of(ObjectIdGetDatum(relid))});
        for (std::uint64_t r = 0; r < key.size(); ++r) {
            t.key_columns.push_back(key.text(r, 1).value());
            // Qualified: the statements it goes into are analysed again under the caller's
            // search_path when they run.
            const Oid type = DatumGetObjectId(key.datum(r, 3).value());
            const int32 typmod = key.int4(r, 4).value();
            t.key_types.push_back(pg::pg_call([&] {
                return std::string(format_type_extended(
                    type, typmod, FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY));
            }));
        }
        pg::Rows leaves = spi.execute(leaves_of, {pg::Arg::of(ObjectIdGetDatum(relid))});
        for (std::uint64_t r = 0; r < leaves.size(); ++r) {
            const Oid leaf = DatumGetObjectId(leaves.datum(r, 1).value());
            t.leaves.push_back(leaf);
            t.leaf_names[leaf] = leaves.text(r, 2).value();
        }
        if (static_cast<int>(tables_.size()) >= limits.max_tables)
            throw Error(sqlstate::kProgramLimitExceeded,
                        "the foreign-key graph of " + tables_.front().name + " has more than " +
                            std::to_string(limits.max_tables) + " tables",
                        "Table " + t.name + " is one too many.",
                        "Back up fewer tables at once (include_children => false), or split the "
                        "delete.");
        index_of[relid] = static_cast<int>(tables_.size());
        tables_.push_back(std::move(t));
        depth.push_back(level);
    };
    add(source, 0);
    if (!include_children) return;
    const bool follow_foreign = settings::follow_foreign_owners;
    // Breadth first through the tables whose rows can be in the set: the source and, when
    // deleting, what CASCADE reaches; exporting, every referencing table.
    std::deque<int> queue{0};
    std::set<int> expanded;
    while (!queue.empty()) {
        const int parent = queue.front();
        queue.pop_front();
        if (!expanded.insert(parent).second) continue;
        pg::check_for_interrupts();
        pg::Rows refs =
            spi.execute(references_to, {pg::Arg::of(ObjectIdGetDatum(tables_[parent].relid))});
        for (std::uint64_t r = 0; r < refs.size(); ++r) {
            PlanEdge e;
            const Oid child = DatumGetObjectId(refs.datum(r, 1).value());
            e.constraint = refs.text(r, 2).value();
            e.raw_columns = strings_of(refs, r, 3);
            e.raw_parent_columns = strings_of(refs, r, 4);
            e.operators = strings_of(refs, r, 5);
            e.action = refs.text(r, 6).value().at(0);
            e.parent_relations = oids_of(refs, r, 8);
            const bool blocks = e.action == 'a' || e.action == 'r';
            if (mode_ == PlanMode::kDelete && blocks) continue;  // the DELETE fails by itself
            if (e.action == 'n' || e.action == 'd') e.changed = strings_of(refs, r, 7);
            for (const auto& c : e.raw_columns) e.columns.push_back(quote(c));
            for (const auto& c : e.raw_parent_columns) e.parent_columns.push_back(quote(c));
            if (!index_of.count(child)) {
                if (depth[parent] + 1 > limits.max_depth)
                    throw Error(sqlstate::kProgramLimitExceeded,
                                "the foreign-key graph of " + tables_.front().name +
                                    " is deeper than " + std::to_string(limits.max_depth) +
                                    " tables",
                                "Constraint " + e.constraint + " leads one level deeper.");
                // Discovery never runs into another owner's tables unless asked to: their
                // triggers, policies and types would run as the caller.
                pg::Rows info = spi.execute(table_info, {pg::Arg::of(ObjectIdGetDatum(child))});
                const Oid owner = DatumGetObjectId(info.datum(0, 3).value());
                if (owner != tables_.front().owner_oid && !follow_foreign)
                    throw Error(sqlstate::kInsufficientPrivilege,
                                "table " + info.text(0, 1).value() + " references " +
                                    tables_[parent].name + " but is owned by another role",
                                "Constraint " + e.constraint + " of table " +
                                    info.text(0, 1).value() + " is owned by " +
                                    info.text(0, 4).value() + "; " + tables_.front().name +
                                    " is owned by " + tables_.front().owner + ".",
                                "Following it would run that role's code as you: SET "
                                "batchguard.follow_foreign_owners = on to follow it anyway.");
                add(child, depth[parent] + 1);
            }
            e.child = index_of[child];
            e.parent = parent;
            if (static_cast<int>(edges_.size()) >= limits.max_edges)
                throw Error(sqlstate::kProgramLimitExceeded,
                            "the foreign-key graph of " + tables_.front().name + " has more than " +
                                std::to_string(limits.max_edges) + " foreign keys",
                            "Constraint " + e.constraint + " is one too many.",
                            "Back up fewer tables at once, or split the delete.");
            tables_[e.child].in_edges.push_back(static_cast<int>(edges_.size()));
            const bool follows = mode_ == PlanMode::kExport || e.action == 'c';
            edges_.push_back(std::move(e));
            if (follows) queue.push_back(edges_.back().child);
        }
    }
    // Each table's key set: the columns its references point at.
    for (PlanEdge& e : edges_) {
        PlanTable& p = tables_[e.parent];
        for (const std::string& c : e.parent_columns) {
            auto it = std::find(p.set_columns.begin(), p.set_columns.end(), c);
            if (it == p.set_columns.end()) {
                p.set_columns.push_back(c);
                it = p.set_columns.end() - 1;
            }
            e.parent_set.push_back(static_cast<int>(it - p.set_columns.begin()));
        }
    }
    for (std::size_t i = 1; i < tables_.size(); ++i) {
        PlanTable& t = tables_[i];
        t.streamed = mode_ == PlanMode::kExport && t.set_columns.empty() && t.in_edges.size() == 1;
    }
    for (PlanTable& t : tables_) {
        for (const std::string& c : t.set_columns) {
            Oid type = InvalidOid;
            pg::Rows columns = spi.execute(columns_of, {pg::Arg::of(ObjectIdGetDatum(t.relid))});
            for (std::uint64_t r = 0; r < columns.size(); ++r)
                if (quote(columns.text(r, 1).value()) == c)
                    type = DatumGetObjectId(columns.datum(r, 3).value());
            t.set_types.push_back(type);
        }
        t.deleted.keys.assign(t.set_columns.size(), {});
        t.deleted.key_nulls.assign(t.set_columns.size(), {});
    }
}

// Where the walk cannot know what the DELETE does, refuse before anything happens.
void RowPlan::check_rules(pg::SpiSession& spi) {
    if (mode_ == PlanMode::kExport) return;
    for (const PlanEdge& e : edges_) {
        if (e.changed.empty()) continue;
        const PlanTable& child = tables_[e.child];
        for (int other : child.in_edges) {
            const PlanEdge& f = edges_[other];
            if (f.action != 'c') continue;
            for (const auto& c : e.changed)
                if (std::find(f.raw_columns.begin(), f.raw_columns.end(), c) != f.raw_columns.end())
                    throw Error(sqlstate::kFeatureNotSupported,
                                "cannot tell what the delete does to table " + child.name,
                                "Constraint " + e.constraint + " (" + action_name(e.action) +
                                    ") changes column " + c + ", which constraint " + f.constraint +
                                    " (CASCADE) uses: which runs first decides whether a row is "
                                    "deleted or changed.",
                                "Delete the referencing rows first.");
        }
        std::vector<std::string_view> names(e.changed.begin(), e.changed.end());
        pg::Rows r = spi.execute(update_actions_on, {pg::Arg::of(ObjectIdGetDatum(child.relid)),
                                                     pg::Arg::of(pg::make_text_array(names))});
        if (!r.empty())
            throw Error(sqlstate::kFeatureNotSupported,
                        "cannot back up what the delete changes beyond table " + child.name,
                        "Constraint " + e.constraint + " (" + action_name(e.action) +
                            ") changes columns that constraint " + r.text(0, 1).value() +
                            " of table " + r.text(0, 2).value() +
                            " follows with an ON UPDATE action.",
                        "Delete the referencing rows first.");
    }
}

void RowPlan::select_source(pg::SpiSession& spi, std::optional<Datum> ids) {
    PlanTable& s = tables_.front();
    std::string where = "true";
    std::vector<Oid> types;
    std::vector<Datum> values;
    if (ids) {
        if (s.key_columns.size() != 1)
            throw Error(sqlstate::kInvalidParameterValue,
                        "table \"" + s.name +
                            "\" has no single-column primary key, so ids cannot select its rows",
                        {}, "Pass ids => NULL to back up every row you can read.");
        pg::Rows key = spi.execute(primary_key_of, {pg::Arg::of(ObjectIdGetDatum(s.relid))});
        const Oid type = DatumGetObjectId(key.datum(0, 3).value());
        const Oid eq =
            pg::pg_call([&] { return lookup_type_cache(type, TYPECACHE_EQ_OPR)->eq_opr; });
        if (!OidIsValid(eq))
            throw Error(sqlstate::kWrongObjectType,
                        "the primary key of \"" + s.name + "\" has no equality operator");
        const std::string op =
            spi.execute(operator_name, {pg::Arg::of(ObjectIdGetDatum(eq))}).text(0, 1).value();
        where = "bg_row." + quote(s.key_columns[0]) + " " + op +
                " ANY ($1::pg_catalog.text[]::" + s.key_types[0] + "[])";
        types.push_back(TEXTARRAYOID);
        values.push_back(*ids);
    }
    source_condition_ = where;
    if (streamed_) return;  // memory stays bounded: the export streams the rows itself
    std::string sql = "SELECT bg_row.tableoid, bg_row.ctid";
    for (const std::string& c : s.set_columns) sql += ", bg_row." + c;
    sql += " FROM " + std::string(s.partitioned ? "" : "ONLY ") + s.name + " bg_row WHERE " + where;
    if (mode_ == PlanMode::kDelete) sql += " FOR UPDATE OF bg_row";
    const pg::PinnedPlan prepared(sql, types);
    execute_plan(prepared.get(), values.data(), mode_ == PlanMode::kDelete, s);
    collect_rows(memory_, s.deleted, -1, s.set_columns.size());
}

// The rows of edge.child that reference the given rows of the parent through the edge.
// New rows go into `into` (with `via`); returns their indexes. Rows already there are
// returned in `seen` instead when it is given.
std::optional<RowPlan::EdgeQuery> RowPlan::edge_query(int edge) const {
    const PlanEdge& e = edges_[static_cast<std::size_t>(edge)];
    const RowSet& parent_rows = tables_[static_cast<std::size_t>(e.parent)].deleted;
    std::vector<int> all(parent_rows.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
    return edge_query(e, parent_rows, all);
}

std::optional<RowPlan::EdgeQuery> RowPlan::edge_query(
    const PlanEdge& edge, const RowSet& parent_rows,
    const std::vector<int>& parent_rows_used) const {
    const PlanTable& parent = tables_[edge.parent];
    const PlanTable& child = tables_[edge.child];
    const std::size_t n = edge.columns.size();
    std::vector<std::vector<Datum>> arrays(n);
    for (int r : parent_rows_used) {
        const RowSet::Row& row = parent_rows.rows[r];
        if (std::find(edge.parent_relations.begin(), edge.parent_relations.end(), row.relation) ==
            edge.parent_relations.end())
            continue;
        bool any_null = false;
        for (std::size_t c = 0; c < n; ++c)
            any_null = any_null || parent_rows.key_nulls[edge.parent_set[c]][r];
        if (any_null) continue;
        for (std::size_t c = 0; c < n; ++c)
            arrays[c].push_back(parent_rows.keys[edge.parent_set[c]][r]);
    }
    if (arrays.empty() || arrays[0].empty()) return std::nullopt;
    EdgeQuery q;
    q.from = " FROM " + std::string(child.partitioned ? "" : "ONLY ") + child.name +
             " bg_row JOIN ROWS FROM (";
    std::string on, names;
    for (std::size_t c = 0; c < n; ++c) {
        const Oid type = parent.set_types[edge.parent_set[c]];
        pg::pg_call([&] {
            int16 len = 0;
            bool byval = false;
            char align = 0;
            get_typlenbyvalalign(type, &len, &byval, &align);
            const Oid array_type = get_array_type(type);
            if (!OidIsValid(array_type))
                elog(ERROR, "type %u of a referenced column has no array type", type);
            q.types.push_back(array_type);
            q.values.push_back(PointerGetDatum(construct_array(
                arrays[c].data(), static_cast<int>(arrays[c].size()), type, len, byval, align)));
        });
        q.from +=
            (c > 0 ? ", pg_catalog.unnest($" : "pg_catalog.unnest($") + std::to_string(c + 1) + ")";
        names += (c > 0 ? ", k" : "k") + std::to_string(c);
        on += (c > 0 ? " AND bg_k.k" : "bg_k.k") + std::to_string(c) + " " + edge.operators[c] +
              " bg_row." + edge.columns[c];
    }
    q.from += ") AS bg_k(" + names + ") ON " + on;
    return q;
}

std::vector<int> RowPlan::fetch(const PlanEdge& edge, const RowSet& parent_rows,
                                const std::vector<int>& parent_rows_used, RowSet& into, int via,
                                bool lock) {
    const PlanTable& child = tables_[edge.child];
    std::optional<EdgeQuery> q = edge_query(edge, parent_rows, parent_rows_used);
    if (!q) return {};
    std::vector<Oid>& types = q->types;
    std::vector<Datum>& values = q->values;
    std::string sql = "SELECT bg_row.tableoid, bg_row.ctid";
    for (const std::string& c : child.set_columns) sql += ", bg_row." + c;
    sql += q->from;
    if (lock) sql += " FOR UPDATE OF bg_row";
    pg::check_for_interrupts();
    const pg::PinnedPlan prepared(sql, types);
    execute_plan(prepared.get(), values.data(), lock, child);
    return collect_rows(memory_, into, via, child.set_columns.size());
}

// Semi-naive fixpoint: each round follows the rows found in the previous one.
void RowPlan::grow() {
    std::vector<std::vector<int>> frontier(tables_.size());
    direct_rows_ = tables_[0].deleted.size();
    for (int r = 0; r < static_cast<int>(direct_rows_); ++r) frontier[0].push_back(r);
    const bool lock = mode_ == PlanMode::kDelete;
    for (bool any = true; any;) {
        any = false;
        std::vector<std::vector<int>> next(tables_.size());
        for (int e = 0; e < static_cast<int>(edges_.size()); ++e) {
            const PlanEdge& edge = edges_[e];
            if (mode_ != PlanMode::kExport && edge.action != 'c') continue;
            if (tables_[edge.child].streamed) continue;  // the export streams its rows
            if (frontier[edge.parent].empty()) continue;
            std::vector<int> added =
                fetch(edge, tables_[edge.parent].deleted, frontier[edge.parent],
                      tables_[edge.child].deleted, e, lock);
            next[edge.child].insert(next[edge.child].end(), added.begin(), added.end());
            any = any || !added.empty();
        }
        frontier = std::move(next);
    }
}

// SET NULL / SET DEFAULT: the rows the delete changes (their old values are backed up),
// and, previewing, the rows whose RESTRICT / NO ACTION reference makes it fail.
void RowPlan::changed_rows() {
    const bool lock = mode_ == PlanMode::kDelete;
    for (int e = 0; e < static_cast<int>(edges_.size()); ++e) {
        const PlanEdge& edge = edges_[e];
        if (edge.action == 'c') continue;
        PlanTable& child = tables_[edge.child];
        std::vector<int> all(tables_[edge.parent].deleted.size());
        for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
        RowSet matched;
        fetch(edge, tables_[edge.parent].deleted, all, matched, e, lock);
        for (const RowSet::Row& row : matched.rows) {
            const int removed_index = child.deleted.find(row.relation, row.tid);
            const bool removed = removed_index >= 0;
            if (edge.action == 'a' || edge.action == 'r') {
                if (!removed) ++child.blocking;
                continue;
            }
            if (removed) {
                const bool direct = edge.child == 0 && std::size_t(removed_index) < direct_rows_;
                if (!direct) ++child.removed_and_reached[row.relation];
                continue;
            }
            int index = child.changed.find(row.relation, row.tid);
            if (index < 0) {
                index = child.changed.add(row);
                child.changed_by.emplace_back();
            }
            child.changed_by[index].push_back(e);
        }
    }
}

std::map<Oid, RowPlan::Expected> RowPlan::expected() const {
    std::map<Oid, Expected> out;
    for (const PlanTable& t : tables_) {
        for (Oid leaf : t.leaves) out[leaf];
        for (const RowSet::Row& r : t.deleted.rows) ++out[r.relation].deleted;
        for (std::size_t i = 0; i < t.changed.rows.size(); ++i) {
            Expected& x = out[t.changed.rows[i].relation];
            x.updated_min += static_cast<std::int64_t>(t.changed_by[i].size());
            x.updated_max += static_cast<std::int64_t>(t.changed_by[i].size());
        }
        // A removed row that a SET NULL / SET DEFAULT reference also reaches may be
        // updated before the cascade removes it: those rows only, so that an update of a
        // row the plan could not see (row security) is never taken for one of them.
        for (const auto& [relation, rows] : t.removed_and_reached)
            out[relation].updated_max += rows;
    }
    return out;
}

std::string RowPlan::table_of(Oid leaf) const {
    for (const PlanTable& t : tables_)
        if (std::find(t.leaves.begin(), t.leaves.end(), leaf) != t.leaves.end()) return t.name;
    return "?";
}

Datum RowPlan::tid_array(const RowSet& set, Oid relation, int via, bool any_via) {
    std::vector<Datum> tids;
    for (const RowSet::Row& r : set.rows)
        if (r.relation == relation && (any_via || r.via == via))
            tids.push_back(PointerGetDatum(&r.tid));
    return pg::pg_call([&] {
        return PointerGetDatum(construct_array(tids.data(), static_cast<int>(tids.size()), TIDOID,
                                               sizeof(ItemPointerData), false, TYPALIGN_SHORT));
    });
}

std::vector<BackupTable> RowPlan::header_tables() const {
    std::vector<BackupTable> out;
    for (const PlanTable& t : tables_) {
        BackupTable b{t.name, t.columns, t.key_columns, {}};
        b.owner = t.owner;
        b.writable = t.writable;
        for (int e : t.in_edges) {
            const PlanEdge& edge = edges_[e];
            if (edge.action == 'a' || edge.action == 'r') continue;
            b.references.push_back(
                {tables_[edge.parent].name, edge.raw_columns, edge.raw_parent_columns});
        }
        out.push_back(std::move(b));
    }
    return out;
}

}  // namespace batchguard::backup
