// restore_backup (see docs/api.md, "Backups"): puts a backup's rows back, parents before
// children, with the caller's privileges. Format 2: the removed rows through COPY FROM
// where nothing but the columns' input functions runs during the load (copy_restore.hpp),
// otherwise one INSERT ... SELECT over the typed values of _backup_values; rows a delete
// changed get their old values back by UPDATE. Format 1: jsonb_populate_record of each
// table's current row type.
#include "backup/copy_restore.hpp"
#include "backup/dynamic_sql.hpp"
#include "backup/store.hpp"
#include "core/backup_format.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "core/zstd_stream.hpp"
#include "pg/datum.hpp"
#include "pg/files.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"
#include "pg/sha256.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/regproc.h"
#include "utils/typcache.h"
}

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace batchguard;
using namespace batchguard::backup;

namespace {

pg::Statement resolve_table{
    "SELECT c.oid, pg_catalog.format('%I.%I', n.nspname, c.relname)"
    "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.oid = pg_catalog.to_regclass($1) AND c.relkind IN ('r', 'p')",
    {TEXTOID}};

pg::Statement current_columns{
    "SELECT a.attname::pg_catalog.text, pg_catalog.format_type(a.atttypid, a.atttypmod),"
    "       a.attgenerated <> '', a.attidentity <> '',"
    "       pg_catalog.pg_get_serial_sequence($2, a.attname::pg_catalog.text)"
    "  FROM pg_catalog.pg_attribute a"
    " WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
    {OIDOID, TEXTOID}};

pg::Statement current_key{
    "SELECT a.attname::pg_catalog.text"
    "  FROM pg_catalog.pg_index i"
    "  CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY"
    "       AS k(attnum, n)"
    "  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
    " WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.n",
    {OIDOID}};

// Whether the primary key is checked as each row goes in (not DEFERRABLE INITIALLY DEFERRED).
pg::Statement key_checked_at_once{
    "SELECT i.indimmediate FROM pg_catalog.pg_index i WHERE i.indrelid = $1 AND i.indisprimary",
    {OIDOID}};

pg::Statement share_lock_backup{"SELECT FROM batchguard.backups WHERE backup_id = $1 FOR KEY SHARE",
                                {UUIDOID}};

pg::Statement delete_action{
    "SELECT b.delete_actions -> $2 ->> 'action',"
    "       ARRAY(SELECT pg_catalog.jsonb_array_elements_text(b.delete_actions -> $2 -> 'columns'))"
    "  FROM batchguard.backups b WHERE b.backup_id = $1",
    {UUIDOID, TEXTOID}};

enum class OnConflict { kError, kSkip, kUpdate };

struct Column {
    std::string name, type;
    bool generated = false, identity = false;
    std::optional<std::string> sequence;
};

struct Changed {
    std::vector<std::string> columns;
};

struct TableOutcome {
    std::string name;
    std::int64_t rows = 0, inserted = 0, updated = 0, skipped = 0, conflicts = 0;
};

std::string quote(const std::string& identifier) {
    const char* quoted = pg::pg_call([&] { return quote_identifier(identifier.c_str()); });
    return quoted;
}

std::string join(const std::vector<std::string>& items, const std::string& prefix) {
    std::string out;
    for (std::size_t i = 0; i < items.size(); ++i) out += (i > 0 ? ", " : "") + prefix + items[i];
    return out;
}

BackupHeader read_header(pg::SpiSession& spi, const BackupRecord& record) {
    std::unique_ptr<BackupSource> file = open_backup_source(record, spi, false);
    ZstdReader zstd(*file);
    BackupStreamReader stream(zstd, pg::make_sha256());
    return stream.header();
}

std::string literal(const std::string& s) {
    const char* quoted = pg::pg_call([&] { return quote_literal_cstr(s.c_str()); });
    return quoted;
}

pg::Statement relation_bytes{
    "SELECT pg_catalog.sum(pg_catalog.pg_relation_size(p.relid))::pg_catalog.int8"
    "  FROM pg_catalog.pg_partition_tree($1) p",
    {REGCLASSOID}};

// The statement that restores by INSERT looks rows up in tables it inserts into (a row that
// exists is skipped or updated). A table that is empty or small when the statement is
// planned -- emptied by the delete, then vacuumed and analyzed -- looks free to scan, and a
// nested loop scanning it once per backed-up row goes quadratic as the INSERT fills it
// (minutes for 100,000 rows). Planned without nested loops the lookups read such a table
// once (hash or merge join). Larger tables keep the planner's choice: scanning them per
// row costs more than an index probe, which it then takes. Only the planning uses this
// setting, not the statement's triggers.
PlannerSettings lookup_planner_settings(const std::vector<Oid>& tables) {
    constexpr std::int64_t kSmallTableBytes = std::int64_t{8} << 20;
    pg::SpiSession spi;
    for (Oid relid : tables) {
        const pg::Rows size = spi.execute(relation_bytes, {pg::Arg::of(ObjectIdGetDatum(relid))});
        if (size.int8(0, 1).value_or(0) < kSmallTableBytes) return {{"enable_nestloop", "off"}};
    }
    return {};
}

class TableRestore {
  public:
    // target: the table the caller named for these rows (restore_backup_into), or empty
    // for the backed-up table's own name.
    TableRestore(Datum backup_id, const BackupTable& table, OnConflict mode, bool dry_run,
                 std::string target = {})
        : backup_id_(backup_id),
          table_(table),
          mode_(mode),
          dry_run_(dry_run),
          target_(std::move(target)) {}

    // changed_columns: the columns a SET NULL / SET DEFAULT changed (their old values are
    // put back on the existing rows); empty for deleted rows.
    TableOutcome run(pg::SpiSession& spi, const std::vector<std::string>& changed_columns) {
        TableOutcome out;
        out.name = table_.name;
        resolve(spi);
        std::vector<std::string> changed;
        for (const auto& c : changed_columns) changed.push_back(quote(c));

        if (dry_run_) {
            pg::Rows counts = run_dynamic(
                src() + "SELECT pg_catalog.count(*)::pg_catalog.int8, " +
                    (match_.empty()
                         ? "0::pg_catalog.int8"
                         : "pg_catalog.count(*) FILTER (WHERE " + exists() + ")::pg_catalog.int8") +
                    " FROM bg_src bg_s",
                {}, true);
            out.rows = counts.int8(0, 1).value();
            classify(out, counts.int8(0, 2).value(), !changed.empty());
            return out;
        }
        // One statement, one read of the backup: the UPDATE of existing rows (the old values
        // of SET NULL / SET DEFAULT columns, or every column with 'update') and the INSERT
        // of the others. Both see the rows as they were before the statement.
        std::vector<std::string> set = changed;
        if (set.empty() && mode_ == OnConflict::kUpdate)
            for (const auto& c : insert_) {
                bool skip = false;
                for (const auto& k : match_) skip = skip || k == c;
                for (const auto& i : identity_) skip = skip || i == c;
                if (!skip) set.push_back(c);
            }
        const bool updating = !set.empty() && !match_.empty();
        std::string sql = src();
        if (updating)
            sql += ", bg_upd AS (UPDATE " + name_ + " bg_t SET (" + join(set, "") + ") = ROW(" +
                   join(set, "bg_s.") + ") FROM bg_src bg_s WHERE " + match() + " RETURNING 1)";
        sql += ", bg_ins AS (INSERT INTO " + name_ + " (" + join(insert_, "") +
               ") OVERRIDING SYSTEM VALUE SELECT " + join(insert_, "bg_s.") + " FROM bg_src bg_s" +
               (match_.empty() ? "" : " WHERE NOT " + exists()) + " RETURNING 1)";
        sql +=
            " SELECT (SELECT pg_catalog.count(*) FROM bg_src)::pg_catalog.int8,"
            " (SELECT pg_catalog.count(*) FROM bg_ins)::pg_catalog.int8";
        try {
            pg::Rows counts =
                run_dynamic(sql, {}, false,
                            lookup_planner_settings(match_.empty() ? std::vector<Oid>{}
                                                                   : std::vector<Oid>{relid_}));
            out.rows = counts.int8(0, 1).value();
            const std::int64_t inserted = counts.int8(0, 2).value();
            classify(out, out.rows - inserted, !changed.empty());
        } catch (const pg::PgError& e) {
            if (e.data()->sqlerrcode != ERRCODE_UNIQUE_VIOLATION) throw;
            throw Error(sqlstate::kUniqueViolation,
                        "the backup conflicts with rows that cannot be restored over",
                        "Rows with the same keys exist but are not visible to you, or another "
                        "unique constraint conflicts.",
                        {});
        }
        // The statement ran; the error aborts the caller's transaction (or savepoint) with it.
        if (out.conflicts > 0)
            throw Error(sqlstate::kUniqueViolation,
                        std::to_string(out.conflicts) +
                            (out.conflicts == 1 ? " row of table " : " rows of table ") +
                            table_.name + " in the backup already exist" +
                            (out.conflicts == 1 ? "s" : ""),
                        "Nothing was restored.",
                        "on_conflict => 'skip' keeps the existing rows, 'update' overwrites "
                        "them.");
        if (out.inserted > 0) move_sequences();
        return out;
    }

  private:
    // Splits rows into inserted and existing; existing rows are updated (old values of a
    // SET NULL / SET DEFAULT), conflicts, skipped or updated by on_conflict.
    void classify(TableOutcome& out, std::int64_t existing, bool changed) const {
        out.inserted = out.rows - existing;
        if (changed)
            out.updated = existing;
        else if (mode_ == OnConflict::kError)
            out.conflicts = existing;
        else if (mode_ == OnConflict::kSkip)
            out.skipped = existing;
        else
            out.updated = existing;
    }

    void resolve(pg::SpiSession& spi) {
        pg::Rows t =
            spi.execute(resolve_table, {pg::Arg::text(target_.empty() ? table_.name : target_)});
        if (t.empty())
            throw Error(sqlstate::kUndefinedTable,
                        "table " + table_.name + " of the backup no longer exists", {},
                        "Create it again to restore its rows, or read them with backup_rows().");
        relid_ = DatumGetObjectId(t.datum(0, 1).value());
        name_ = t.text(0, 2).value();
        pg::Rows cols = spi.execute(current_columns,
                                    {pg::Arg::of(ObjectIdGetDatum(relid_)), pg::Arg::text(name_)});
        std::map<std::string, Column> current;
        for (std::uint64_t r = 0; r < cols.size(); ++r) {
            Column c{cols.text(r, 1).value(), cols.text(r, 2).value(), cols.boolean(r, 3).value(),
                     cols.boolean(r, 4).value(), cols.text(r, 5)};
            current[c.name] = c;
        }
        std::vector<std::string> changed_type;
        for (const BackupColumn& b : table_.columns) {
            auto it = current.find(b.name);
            if (it == current.end())
                throw Error(sqlstate::kUndefinedColumn,
                            "column \"" + b.name + "\" of table " + name_ +
                                " no longer exists, but the backup has values for it",
                            {}, "Add the column back to restore these rows.");
            if (it->second.generated) continue;  // recomputed from the other columns
            const std::string q = quote(b.name);
            insert_.push_back(q);
            if (it->second.identity) identity_.push_back(q);
            if (it->second.sequence) sequences_.push_back({q, *it->second.sequence});
            if (it->second.type != b.type) changed_type.push_back(b.name);
        }
        pg::Rows key = spi.execute(current_key, {pg::Arg::of(ObjectIdGetDatum(relid_))});
        for (std::uint64_t r = 0; r < key.size(); ++r) {
            const std::string k = key.text(r, 1).value();
            bool in_backup = false;
            for (const BackupColumn& b : table_.columns) in_backup = in_backup || b.name == k;
            if (!in_backup) {
                match_.clear();
                break;
            }
            match_.push_back(quote(k));
        }
        for (const std::string& c : changed_type) probe(c, current[c].type);
    }

    // A column whose type changed: every backed-up value must still convert.
    void probe(const std::string& column, const std::string& type) {
        std::string before;
        for (const BackupColumn& b : table_.columns)
            if (b.name == column) before = b.type;
        try {
            run_dynamic("SELECT pg_catalog.count((pg_catalog.jsonb_populate_record(NULL::" + name_ +
                            ", pg_catalog.jsonb_build_object($3, bg_b.\"row\" -> $3)))." +
                            quote(column) +
                            ") FROM batchguard.backup_rows($1) bg_b WHERE bg_b.table_name = $2",
                        {{UUIDOID, pg::Arg::of(backup_id_)},
                         {TEXTOID, pg::Arg::text(table_.name)},
                         {TEXTOID, pg::Arg::text(column)}},
                        true);
        } catch (const pg::PgError& e) {
            throw Error(sqlstate::kDatatypeMismatch,
                        "column \"" + column + "\" of table " + name_ +
                            " no longer fits the backed-up values",
                        "Its type changed from " + before + " to " + type + ": " +
                            (e.data()->message ? e.data()->message : "") + ".",
                        "Change the column's type back to restore these rows.");
        }
    }

    // Literals, not parameters: a statement without parameters has one plan (see
    // lookup_planner_settings).
    std::string src() const {
        return "WITH bg_src AS MATERIALIZED (SELECT bg_r.* FROM batchguard.backup_rows(" +
               literal(uuid_text(backup_id_)) +
               "::pg_catalog.uuid) bg_b CROSS JOIN LATERAL "
               "pg_catalog.jsonb_populate_record(NULL::" +
               name_ + ", bg_b.\"row\") bg_r WHERE bg_b.table_name OPERATOR(pg_catalog.=) " +
               literal(table_.name) + ") ";
    }

    std::string match() const {
        std::string out;
        for (std::size_t i = 0; i < match_.size(); ++i)
            out +=
                (i > 0 ? " AND " : "") + std::string("bg_t.") + match_[i] + " = bg_s." + match_[i];
        return out;
    }

    std::string exists() const {
        return "EXISTS (SELECT 1 FROM " + name_ + " bg_t WHERE " + match() + ")";
    }

    // Identity and serial columns: the sequence moves past the restored values.
    void move_sequences() {
        for (const auto& [column, sequence] : sequences_)
            run_dynamic(
                "SELECT pg_catalog.setval($1::pg_catalog.regclass, x.m)"
                "  FROM (SELECT pg_catalog.max(" +
                    column + ")::pg_catalog.int8 AS m FROM " + name_ +
                    ") x"
                    " WHERE x.m IS NOT NULL AND x.m > coalesce(pg_catalog."
                    "pg_sequence_last_value($1::pg_catalog.regclass), x.m - 1)",
                {{TEXTOID, pg::Arg::text(sequence)}}, false);
    }

    Datum backup_id_;
    const BackupTable& table_;
    OnConflict mode_;
    bool dry_run_;
    std::string target_;
    Oid relid_ = InvalidOid;
    std::string name_;
    std::vector<std::string> insert_, identity_, match_;
    std::vector<std::pair<std::string, std::string>> sequences_;
};

pg::Statement values_function{
    "SELECT FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
    " WHERE n.nspname = 'batchguard' AND p.proname = '_backup_values'",
    {}};

pg::Statement target_info{
    "SELECT pg_catalog.pg_get_userbyid(c.relowner)::pg_catalog.text,"
    "       pg_catalog.pg_get_userbyid($2)::pg_catalog.text"
    "  FROM pg_catalog.pg_class c WHERE c.oid = $1",
    {OIDOID, OIDOID}};

pg::Statement target_columns{
    "SELECT a.attname::pg_catalog.text, a.atttypid, a.atttypmod,"
    "       a.attgenerated <> '', a.attidentity <> '',"
    "       pg_catalog.pg_get_serial_sequence($2, a.attname::pg_catalog.text),"
    "       d.adbin::pg_catalog.text"
    "  FROM pg_catalog.pg_attribute a"
    "  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
    "                                   AND a.attgenerated = ''"
    " WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
    {OIDOID, TEXTOID}};

pg::Statement equality_operator{
    "SELECT pg_catalog.format('OPERATOR(%I.%s)', s.nspname, o.oprname)"
    "  FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace s ON s.oid = o.oprnamespace"
    " WHERE o.oid = $1",
    {OIDOID}};

// One table of a format-2 restore: its current columns matched to the backup's.
// Backed-up table name -> the table the caller named for its rows (schema-qualified).
using Targets = std::map<std::string, std::string>;

struct Target {
    struct Col {
        std::string name;  // quoted
        std::string raw;
        std::string value;         // bg_s.t<i>_c<j>
        std::string type;          // the base type, with its modifier
        std::string equals;        // OPERATOR(schema.=) of the base type, or empty
        std::string default_expr;  // or empty
        bool identity = false;
        std::optional<std::string> sequence;
    };
    std::size_t index = 0;
    const BackupTable* table = nullptr;
    Oid relid = InvalidOid;
    std::string name;
    std::vector<Col> cols;
    std::vector<std::size_t> key;      // indexes into cols; empty: no usable key
    bool key_checked_at_once = false;  // its unique index refuses a duplicate in the INSERT
    std::vector<std::string> changed;  // columns a delete changed (from delete_actions)
    bool fills_defaults = false;       // a column not in the backup gets a default

    const Col* col(const std::string& raw) const {
        for (const Col& c : cols)
            if (c.raw == raw) return &c;
        return nullptr;
    }

    std::string match(const std::string& t, const std::string& s) const {
        std::string out;
        for (std::size_t k : key) {
            const Col& c = cols[k];
            out += (out.empty() ? "" : " AND ") + t + "." + c.name + " " + c.equals + " " + s +
                   "." + c.value.substr(5);  // value is "bg_s.<column>"
        }
        return out;
    }
};

// A stored expression (pg_node_tree) as SQL in which every function, operator and type is
// schema-qualified: deparsed with nothing on the search path. The statements it goes into
// are analysed again under the caller's search_path when they run.
std::string qualified_expression(const std::string& node_tree, Oid relid) {
    return pg::pg_call([&] {
        OverrideSearchPath nothing{NIL, false, false, 0};
        PushOverrideSearchPath(&nothing);
        const Datum sql = DirectFunctionCall2(pg_get_expr, CStringGetTextDatum(node_tree.c_str()),
                                              ObjectIdGetDatum(relid));
        PopOverrideSearchPath();
        return std::string(TextDatumGetCString(sql));
    });
}

// target: the table the caller named for these rows (restore_backup_into), or empty.
Target resolve_target(pg::SpiSession& spi, const BackupTable& table, std::size_t index,
                      const std::string& target) {
    Target t;
    t.index = index;
    t.table = &table;
    pg::Rows r = spi.execute(resolve_table, {pg::Arg::text(target.empty() ? table.name : target)});
    if (r.empty())
        throw Error(sqlstate::kUndefinedTable,
                    "table " + table.name + " of the backup no longer exists", {},
                    "Create it again to restore its rows, or read them with backup_rows().");
    t.relid = DatumGetObjectId(r.datum(0, 1).value());
    t.name = r.text(0, 2).value();
    // Restore writes only into a table of the owner recorded in the backup, or the caller's
    // own: a look-alike another role created under the same name gets nothing. A table the
    // caller named (restore_backup_into) is the caller's choice.
    const Oid caller = pg::pg_call([] { return GetUserId(); });
    pg::Rows o = spi.execute(target_info, {pg::Arg::of(ObjectIdGetDatum(t.relid)),
                                           pg::Arg::of(ObjectIdGetDatum(caller))});
    const std::string current_owner = o.text(0, 1).value();
    if (target.empty() && !table.owner.empty() && current_owner != table.owner &&
        current_owner != o.text(0, 2))
        throw Error(sqlstate::kInsufficientPrivilege,
                    "table " + t.name + " is owned by " + current_owner +
                        ", not by the owner recorded in the backup",
                    "The backup's rows of " + table.name + " came from a table owned by " +
                        table.owner + ".",
                    "Restore as that role, give the table back to it, or name the table to "
                    "restore into with restore_backup_into().");
    // Restore never writes where the backup's maker could not: rows it could only read
    // (another role's table it was allowed to export) are not put back through it.
    if (!table.writable)
        throw Error(sqlstate::kInsufficientPrivilege,
                    "the backup's rows of table " + table.name + " cannot be restored",
                    "When the backup was made, its owner could not write that table (no INSERT "
                    "or UPDATE privilege).",
                    "Read them with backup_rows() and insert them as a role that may.");
    pg::Rows cols = spi.execute(target_columns,
                                {pg::Arg::of(ObjectIdGetDatum(t.relid)), pg::Arg::text(t.name)});
    struct Current {
        Oid type;
        int32 typmod;
        bool generated, identity;
        std::optional<std::string> sequence, default_expr;
    };
    std::map<std::string, Current> current;
    for (std::uint64_t i = 0; i < cols.size(); ++i)
        current[cols.text(i, 1).value()] = {DatumGetObjectId(cols.datum(i, 2).value()),
                                            cols.int4(i, 3).value(),
                                            cols.boolean(i, 4).value(),
                                            cols.boolean(i, 5).value(),
                                            cols.text(i, 6),
                                            cols.text(i, 7)};
    for (const auto& [name, column] : current) {
        bool in_backup = false;
        for (const BackupColumn& b : table.columns) in_backup = in_backup || b.name == name;
        if (!in_backup && (column.default_expr || column.identity)) t.fills_defaults = true;
    }
    for (std::size_t j = 0; j < table.columns.size(); ++j) {
        const BackupColumn& b = table.columns[j];
        auto it = current.find(b.name);
        if (it == current.end())
            throw Error(sqlstate::kUndefinedColumn,
                        "column \"" + b.name + "\" of table " + t.name +
                            " no longer exists, but the backup has values for it",
                        {}, "Add the column back to restore these rows.");
        if (it->second.generated) continue;  // recomputed from the other columns
        Target::Col c;
        c.raw = b.name;
        c.name = quote(b.name);
        c.value = "bg_s.t" + std::to_string(index) + "_c" + std::to_string(j);
        c.identity = it->second.identity;
        c.sequence = it->second.sequence;
        if (it->second.default_expr)
            c.default_expr = qualified_expression(*it->second.default_expr, t.relid);
        // Values are parsed as the base type: a domain's checks run in the INSERT, under
        // the caller's settings, as they would for a plain INSERT.
        Oid eq = InvalidOid;
        pg::pg_call([&] {
            int32 typmod = it->second.typmod;
            const Oid base = getBaseTypeAndTypmod(it->second.type, &typmod);
            // Qualified: the statement is analysed again under the caller's search_path.
            c.type = format_type_extended(base, typmod,
                                          FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
            eq = lookup_type_cache(base, TYPECACHE_EQ_OPR)->eq_opr;
        });
        if (OidIsValid(eq))
            c.equals = spi.execute(equality_operator, {pg::Arg::of(ObjectIdGetDatum(eq))})
                           .text(0, 1)
                           .value();
        t.cols.push_back(std::move(c));
    }
    pg::Rows key = spi.execute(current_key, {pg::Arg::of(ObjectIdGetDatum(t.relid))});
    for (std::uint64_t r = 0; r < key.size(); ++r) {
        const std::string k = key.text(r, 1).value();
        const Target::Col* c = t.col(k);
        if (c == nullptr || c->equals.empty()) {
            t.key.clear();
            break;
        }
        t.key.push_back(static_cast<std::size_t>(c - t.cols.data()));
    }
    if (!t.key.empty()) {
        pg::Rows at_once =
            spi.execute(key_checked_at_once, {pg::Arg::of(ObjectIdGetDatum(t.relid))});
        t.key_checked_at_once = !at_once.empty() && at_once.boolean(0, 1).value();
    }
    return t;
}

// Format 2: every table in one statement, so that foreign keys among the backup's rows --
// across tables, within one, through cycles -- are checked at its end, when all are back.
pg::Statement library_of_extension{
    "SELECT p.probin FROM pg_catalog.pg_proc p WHERE p.oid = "
    "'batchguard.restore_backup(pg_catalog.uuid, pg_catalog.text, pg_catalog.bool)'"
    "::pg_catalog.regprocedure",
    {}};

// The function that reads a backup's typed values. A database still at 1.0 (library
// updated, ALTER EXTENSION ... UPDATE not run yet) has no batchguard._backup_values: the
// library's reader is then declared for this session as a temporary function, by the
// extension's owner (a superuser: it may declare C functions), so that format-2 backups
// restore there all the same. (Not in a read-only transaction: a dry run there needs 1.1.)
std::string values_function_name() {
    {
        pg::SpiSession spi(pg::SpiSession::Access::kReadOnly, pg::SpiSession::Identity::kAsCaller);
        if (!spi.execute(values_function, {}).empty()) return "batchguard._backup_values";
    }
    // Looked up in the catalog caches, not with a query: one declared by an earlier call in
    // this same statement is not in the statement's snapshot.
    const bool declared = pg::pg_call([] {
        Oid uuid = UUIDOID;
        return OidIsValid(LookupFuncName(
            list_make2(makeString(pstrdup("pg_temp")), makeString(pstrdup("bg_backup_values"))), 1,
            &uuid, true));
    });
    if (declared) return "pg_temp.bg_backup_values";
    if (XactReadOnly)
        throw Error(sqlstate::kFeatureNotSupported,
                    "a dry run of a backup of format 2 in a read-only transaction needs "
                    "pg_batchguard 1.1 in this database",
                    "The database has an older version of the extension installed.",
                    "ALTER EXTENSION pg_batchguard UPDATE;");
    pg::SpiSession owner;  // the extension's owner, the path pinned
    const std::string library = owner.execute(library_of_extension, {}).text(0, 1).value();
    run_dynamic(
        "CREATE FUNCTION pg_temp.bg_backup_values(pg_catalog.uuid)"
        " RETURNS SETOF pg_catalog.record LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE AS " +
            literal(library) + ", 'batchguard_backup_values'",
        {}, false);
    return "pg_temp.bg_backup_values";
}

// A DEBUG1 line: which path restore_backup takes (tests read it).
void debug(const std::string& message) {
    pg::pg_call([&] { elog(DEBUG1, "%s", message.c_str()); });
}

// Whether the removed rows go in by COPY (copy_restore.hpp): only in the default mode
// (conflicts found by the primary key's index as the rows go in), not in a dry run, when
// no table has rows a delete changed (put back by UPDATE) or a deferred primary key, and
// nothing but the columns' input functions runs during the load (copy_path_refused).
// The tables are locked as the INSERT would lock them before their catalogs are read.
bool bulk_path(const std::vector<Target>& targets, OnConflict mode, bool dry_run,
               std::vector<CopyTarget>& out) {
    std::string refused;
    if (dry_run)
        refused = "a dry run";
    else if (mode != OnConflict::kError)
        refused = "on_conflict is not 'error'";
    pg::SpiSession spi(pg::SpiSession::Access::kReadWrite, pg::SpiSession::Identity::kAsCaller);
    for (const Target& t : targets) {
        if (!refused.empty()) break;
        std::string why;
        if (!t.changed.empty())
            why = "the delete changed rows of it";
        else if (t.cols.empty())
            why = "no column of it is restored";
        else if (!t.key.empty() && !t.key_checked_at_once)
            why = "its primary key is deferred";
        else if (t.fills_defaults)
            why = "a column of it not in the backup gets its default";
        if (why.empty()) {
            pg::pg_call([&] { LockRelationOid(t.relid, RowExclusiveLock); });
            why = copy_path_refused(spi, t.relid);
        }
        if (!why.empty()) refused = "table " + t.name + ": " + why;
        CopyTarget c;
        c.relid = t.relid;
        c.backup_name = t.table->name;
        for (const Target::Col& col : t.cols) c.columns.push_back(col.raw);
        out.push_back(std::move(c));
    }
    debug(refused.empty() ? "restore_backup: restoring by COPY"
                          : "restore_backup: restoring by INSERT (" + refused + ")");
    return refused.empty();
}

// Removed rows are inserted; rows a delete changed get their old values back in place,
// found by primary key or, without one, by their other columns.
std::vector<TableOutcome> restore_format2(Datum id, const BackupHeader& header,
                                          const std::vector<Changed>& changed_columns,
                                          const Targets& chosen, OnConflict mode, bool dry_run) {
    const std::string values_function = values_function_name();
    std::vector<Target> targets;
    {
        pg::SpiSession spi(pg::SpiSession::Access::kReadOnly, pg::SpiSession::Identity::kAsCaller);
        for (std::size_t i = 0; i < header.tables.size(); ++i) {
            auto named = chosen.find(header.tables[i].name);
            targets.push_back(resolve_target(spi, header.tables[i], i,
                                             named == chosen.end() ? "" : named->second));
            for (const std::string& c : changed_columns[i].columns)
                if (targets.back().col(c)) targets.back().changed.push_back(c);
        }
    }
    std::vector<CopyTarget> copy_targets;
    bool bulk = bulk_path(targets, mode, dry_run, copy_targets);
    std::string columns = "bg_table pg_catalog.int4, bg_changed pg_catalog.text[]";
    for (const Target& t : targets)
        for (const Target::Col& c : t.cols) columns += ", " + c.value.substr(5) + " " + c.type;
    // The backup's id as a literal: a statement without parameters has one plan (see
    // lookup_planner_settings).
    std::string sql = "WITH bg_src AS MATERIALIZED (SELECT * FROM " + values_function + "(" +
                      literal(uuid_text(id)) + "::pg_catalog.uuid) AS bg_v(" + columns + "))";
    // The rows of each table, counted in one pass over them: r<i> all, c<i> changed ones.
    std::string tallies;
    // Default mode: a removed row that exists already is found by the key's unique index
    // as the INSERT puts it in -- no lookup of its own per row. The statement then fails;
    // a dry run counts the conflicts for the error.
    bool index_finds_conflicts = false;
    std::vector<Oid> looked_up;  // tables the statement joins the backup's rows to
    std::string counts;
    for (const Target& t : targets) {
        const std::string i = std::to_string(t.index);
        const std::string mine = "bg_s.bg_table OPERATOR(pg_catalog.=) " + i;
        const std::string removed = mine + " AND bg_s.bg_changed IS NULL";
        const std::string changed = mine + " AND bg_s.bg_changed IS NOT NULL";
        const std::string exists = t.key.empty()
                                       ? "false"
                                       : "EXISTS (SELECT 1 FROM " + t.name + " bg_t WHERE " +
                                             t.match("bg_t", "bg_s") + ")";
        tallies += std::string(tallies.empty() ? "" : ", ") + "pg_catalog.count(*) FILTER (WHERE " +
                   mine + ")::pg_catalog.int8 AS r" + i + ", pg_catalog.count(*) FILTER (WHERE " +
                   changed + ")::pg_catalog.int8 AS c" + i;
        const bool by_index = !dry_run && mode == OnConflict::kError && t.key_checked_at_once;
        index_finds_conflicts = index_finds_conflicts || by_index;
        if (!dry_run && ((!t.key.empty() && !by_index) || !t.changed.empty()))
            looked_up.push_back(t.relid);
        // Its rows, the removed ones that exist, the inserted ones, those restored in place.
        counts +=
            std::string(counts.empty() ? "" : ", ") + "bg_tally.r" + i + ", " +
            (by_index || t.key.empty() ? std::string("0::pg_catalog.int8")
                                       : "(SELECT pg_catalog.count(*) FROM bg_src bg_s WHERE " +
                                             removed + " AND " + exists + ")::pg_catalog.int8");
        if (dry_run) {
            counts += ", 0::pg_catalog.int8, bg_tally.c" + i;
            continue;
        }
        // Old values of changed rows, in place.
        std::string upd = "0::pg_catalog.int8";
        if (!t.changed.empty()) {
            std::string set_cols, set_values;
            for (const std::string& raw : t.changed) {
                const Target::Col* c = t.col(raw);
                set_cols += (set_cols.empty() ? "" : ", ") + c->name;
                set_values += std::string(set_values.empty() ? "" : ", ") + "CASE WHEN " +
                              literal(raw) + " OPERATOR(pg_catalog.=) ANY (bg_s.bg_changed) THEN " +
                              c->value + " ELSE bg_t." + c->name + " END";
            }
            if (!t.key.empty()) {
                sql += ", bg_u" + i + " AS (UPDATE " + t.name + " bg_t SET (" + set_cols +
                       ") = ROW(" + set_values + ") FROM bg_src bg_s WHERE " + changed + " AND " +
                       t.match("bg_t", "bg_s") + " RETURNING 1)";
            } else {
                // Without a key: pair each backed-up row with one current row whose other
                // columns are the same and whose changed columns hold what the delete set.
                std::string same_s, same_c, after;
                for (const Target::Col& c : t.cols) {
                    if (std::find(t.changed.begin(), t.changed.end(), c.raw) != t.changed.end()) {
                        after += std::string(after.empty() ? "" : " OR ") + "bg_c." + c.name +
                                 " IS NULL";
                        if (!c.default_expr.empty())
                            after += " OR pg_catalog.textin(pg_catalog.record_out(ROW(bg_c." +
                                     c.name +
                                     "))) OPERATOR(pg_catalog.=) pg_catalog.textin("
                                     "pg_catalog.record_out(ROW((" +
                                     c.default_expr + ")::" + c.type + ")))";
                        continue;
                    }
                    same_s += (same_s.empty() ? "" : ", ") + c.value;
                    same_c += (same_c.empty() ? "" : ", ") + std::string("bg_c.") + c.name;
                }
                if (same_s.empty()) {
                    same_s = "NULL";
                    same_c = "NULL";
                }
                const std::string row_s =
                    "pg_catalog.textin(pg_catalog.record_out(ROW(" + same_s + ", NULL)))";
                const std::string row_c =
                    "pg_catalog.textin(pg_catalog.record_out(ROW(" + same_c + ", NULL)))";
                sql += ", bg_u" + i + " AS (UPDATE " + t.name + " bg_t SET (" + set_cols +
                       ") = ROW(" + set_values + ") FROM (SELECT bg_s.*, " + row_s +
                       " AS bg_m, pg_catalog.row_number() OVER (PARTITION BY " + row_s +
                       ") AS bg_n FROM bg_src bg_s WHERE " + changed +
                       ") bg_s JOIN (SELECT bg_c.tableoid AS bg_o, bg_c.ctid AS bg_id, " + row_c +
                       " AS bg_m, pg_catalog.row_number() OVER (PARTITION BY " + row_c +
                       ") AS bg_n FROM " + t.name + " bg_c WHERE " + after +
                       ") bg_c ON bg_c.bg_m OPERATOR(pg_catalog.=) bg_s.bg_m"
                       " AND bg_c.bg_n OPERATOR(pg_catalog.=) bg_s.bg_n"
                       " WHERE bg_t.tableoid OPERATOR(pg_catalog.=) bg_c.bg_o"
                       " AND bg_t.ctid OPERATOR(pg_catalog.=) bg_c.bg_id RETURNING 1)";
            }
            upd = "(SELECT pg_catalog.count(*) FROM bg_u" + i + ")::pg_catalog.int8";
        }
        // Removed rows: existing ones overwritten ('update'), the others inserted.
        std::string names, values, set_cols, set_values;
        for (const Target::Col& c : t.cols) {
            names += (names.empty() ? "" : ", ") + c.name;
            values += (values.empty() ? "" : ", ") + c.value;
            bool is_key = false;
            for (std::size_t k : t.key) is_key = is_key || t.cols[k].raw == c.raw;
            if (is_key || c.identity) continue;
            set_cols += (set_cols.empty() ? "" : ", ") + c.name;
            set_values += (set_values.empty() ? "" : ", ") + c.value;
        }
        if (mode == OnConflict::kUpdate && !t.key.empty() && !set_cols.empty())
            sql += ", bg_w" + i + " AS (UPDATE " + t.name + " bg_t SET (" + set_cols + ") = ROW(" +
                   set_values + ") FROM bg_src bg_s WHERE " + removed + " AND " +
                   t.match("bg_t", "bg_s") + " RETURNING 1)";
        sql += ", bg_i" + i + " AS (INSERT INTO " + t.name + " (" + names +
               ") OVERRIDING SYSTEM VALUE SELECT " + values + " FROM bg_src bg_s WHERE " + removed +
               (t.key.empty() || by_index ? "" : " AND NOT " + exists) + " RETURNING 1)";
        counts += ", (SELECT pg_catalog.count(*) FROM bg_i" + i + ")::pg_catalog.int8, " + upd;
    }
    sql += ", bg_tally AS (SELECT " + tallies + " FROM bg_src bg_s) SELECT " + counts +
           " FROM bg_tally";
    std::vector<TableOutcome> outcomes;
    bool conflicted = false;
    {
        pg::SpiSession spi(pg::SpiSession::Access::kReadWrite, pg::SpiSession::Identity::kAsCaller,
                           pg::SpiSession::SearchPath::kCallers);
        std::vector<std::int64_t> r;  // the result row's counts
        const auto run = [&] {
            r.clear();
            if (bulk) {
                // Per table: its rows, none existing (a unique violation stops the load),
                // the inserted ones, none restored in place (no changed columns).
                for (const CopyCounts& c : copy_backup_rows(id, copy_targets))
                    r.insert(r.end(), {c.rows, 0, c.inserted, 0});
                return;
            }
            pg::Rows row = run_dynamic(sql, {}, dry_run, lookup_planner_settings(looked_up));
            for (int c = 1; c <= static_cast<int>(targets.size()) * 4; ++c)
                r.push_back(row.int8(0, c).value());
        };
        try {
            if (!index_finds_conflicts && !bulk) {
                run();
            } else {
                // In a subtransaction: after a unique violation the conflicts are counted;
                // after the bulk path gave up or met a foreign-key violation (rows of a
                // table it loads before the rows they reference, which the INSERT path
                // checks only once all are in) the INSERT path runs instead.
                const MemoryContext context = CurrentMemoryContext;
                const ResourceOwner owner = CurrentResourceOwner;
                for (bool done = false; !done;) {
                    pg::pg_call([] { BeginInternalSubTransaction(nullptr); });
                    MemoryContextSwitchTo(context);
                    const auto rollback = [&] {
                        MemoryContextSwitchTo(context);
                        pg::pg_call([&] {
                            RollbackAndReleaseCurrentSubTransaction();
                            MemoryContextSwitchTo(context);
                            CurrentResourceOwner = owner;
                        });
                    };
                    try {
                        run();
                        pg::pg_call([] { ReleaseCurrentSubTransaction(); });
                        MemoryContextSwitchTo(context);
                        CurrentResourceOwner = owner;
                        done = true;
                    } catch (const CopyGaveUp&) {
                        rollback();
                        bulk = false;
                        debug("restore_backup: the bulk path gave up; restoring by INSERT");
                    } catch (const pg::PgError& e) {
                        rollback();
                        if (bulk && e.data()->sqlerrcode == ERRCODE_FOREIGN_KEY_VIOLATION) {
                            bulk = false;
                            debug(
                                "restore_backup: a foreign key refused a COPY; restoring by "
                                "INSERT");
                            continue;
                        }
                        if (e.data()->sqlerrcode != ERRCODE_UNIQUE_VIOLATION) throw;
                        conflicted = true;
                        done = true;
                    }
                }
            }
        } catch (const pg::PgError& e) {
            if (e.data()->sqlerrcode != ERRCODE_UNIQUE_VIOLATION) throw;
            conflicted = true;
        }
        for (const Target& t : conflicted ? std::vector<Target>{} : targets) {
            const std::size_t base = t.index * 4;
            TableOutcome out;
            out.name = t.table->name;
            out.rows = r[base];
            const std::int64_t restored_in_place = r[base + 3];
            const std::int64_t removed = out.rows - restored_in_place;
            const std::int64_t existing = r[base + 1];
            out.inserted = dry_run ? removed - existing : r[base + 2];
            out.updated = restored_in_place;
            if (mode == OnConflict::kError)
                out.conflicts = existing;
            else if (mode == OnConflict::kSkip)
                out.skipped = existing;
            else
                out.updated += existing;
            outcomes.push_back(out);
        }
        if (!dry_run && !conflicted)
            for (const Target& t : targets) {
                if (outcomes[t.index].inserted == 0) continue;
                for (const Target::Col& c : t.cols) {
                    if (!c.sequence) continue;
                    run_dynamic(
                        "SELECT pg_catalog.setval($1::pg_catalog.regclass, x.m)"
                        "  FROM (SELECT pg_catalog.max(" +
                            c.name + ")::pg_catalog.int8 AS m FROM " + t.name +
                            ") x WHERE x.m IS NOT NULL AND x.m > coalesce(pg_catalog."
                            "pg_sequence_last_value($1::pg_catalog.regclass), x.m - 1)",
                        {{TEXTOID, pg::Arg::text(*c.sequence)}}, false);
                }
            }
    }
    if (conflicted) {
        // Existing rows met in the default mode: counted as a dry run counts them, and
        // reported below as before; none (a row not visible to the caller, or another
        // unique constraint): the generic error.
        if (index_finds_conflicts)
            outcomes = restore_format2(id, header, changed_columns, chosen, mode, true);
        bool counted = false;
        for (const TableOutcome& o : outcomes) counted = counted || o.conflicts > 0;
        if (!counted)
            throw Error(sqlstate::kUniqueViolation,
                        "the backup conflicts with rows that cannot be restored over",
                        "Rows with the same keys exist but are not visible to you, or "
                        "another unique constraint conflicts.",
                        {});
    }
    for (const TableOutcome& o : outcomes)
        if (o.conflicts > 0 && !dry_run)
            throw Error(sqlstate::kUniqueViolation,
                        std::to_string(o.conflicts) +
                            (o.conflicts == 1 ? " row of table " : " rows of table ") + o.name +
                            " in the backup already exist" + (o.conflicts == 1 ? "s" : ""),
                        "Nothing was restored.",
                        "on_conflict => 'skip' keeps the existing rows, 'update' overwrites "
                        "them.");
    return outcomes;
}

pg::Statement named_targets{
    "SELECT e.key, pg_catalog.jsonb_typeof(e.value), e.value OPERATOR(pg_catalog.#>>) '{}'"
    "  FROM pg_catalog.jsonb_each($1) e",
    {JSONBOID}};

pg::Statement json_type{"SELECT pg_catalog.jsonb_typeof($1)", {JSONBOID}};

pg::Statement table_name_of{
    "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)"
    "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.oid = $1 AND c.relkind IN ('r', 'p')",
    {OIDOID}};

// restore_backup_into's targets: {"<table in the backup>": "<table to restore into>"},
// target names resolved on the caller's search_path (as the caller wrote them).
Targets parse_targets(Datum json) {
    Targets out;
    // kCallers: the statements are pinned, the names below resolve on the caller's path.
    pg::SpiSession spi(pg::SpiSession::Access::kReadOnly, pg::SpiSession::Identity::kAsCaller,
                       pg::SpiSession::SearchPath::kCallers);
    if (spi.execute(json_type, {pg::Arg::of(json)}).text(0, 1) != "object")
        throw Error(sqlstate::kInvalidParameterValue, "targets must be a JSON object", {},
                    "Map each table of the backup to the table to restore into: "
                    "'{\"public.orders\": \"public.orders_old\"}'.");
    pg::Rows r = spi.execute(named_targets, {pg::Arg::of(json)});
    for (std::uint64_t i = 0; i < r.size(); ++i) {
        const std::string key = r.text(i, 1).value();
        if (r.text(i, 2) != "string")
            throw Error(sqlstate::kInvalidParameterValue,
                        "the target of " + key + " must be a table name (a JSON string)");
        const std::string name = r.text(i, 3).value();
        const Oid relid = pg::pg_call([&] {
            List* names = stringToQualifiedNameList(name.c_str());
            return RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, true);
        });
        pg::Rows t = spi.execute(table_name_of, {pg::Arg::of(ObjectIdGetDatum(relid))});
        if (t.empty())
            throw Error(sqlstate::kUndefinedTable,
                        "the target of " + key + ", " + name + ", is not a table", {},
                        "Name an existing table, schema-qualified or on your search_path.");
        out[key] = t.text(0, 1).value();
    }
    return out;
}

Datum restore(Datum id, const std::string& on_conflict, bool dry_run, const Targets& targets) {
    pg::set_error_context("pg_batchguard backup " + uuid_text(id));
    OnConflict mode = OnConflict::kError;
    if (on_conflict == "skip")
        mode = OnConflict::kSkip;
    else if (on_conflict == "update")
        mode = OnConflict::kUpdate;
    else if (on_conflict != "error")
        throw Error(sqlstate::kInvalidParameterValue,
                    "on_conflict must be 'error', 'skip' or 'update'",
                    "on_conflict is '" + on_conflict + "'.");
    if (!dry_run) pg::pg_call([] { PreventCommandIfReadOnly("restore_backup()"); });
    const std::string owner = pg::current_owner();

    std::optional<BackupRecord> record;
    BackupHeader header;
    std::vector<Changed> changed(0);
    {
        pg::SpiSession owner_spi;
        record = find_backup(owner_spi, id, owner, false, false);
        if (!record) unknown_backup(id);
        // A key-share lock until the caller's transaction ends: cleanup_expired_backups skips a
        // backup being restored (SKIP LOCKED), and one being removed is waited for, then gone.
        if (!dry_run && owner_spi.execute(share_lock_backup, {pg::Arg::of(id)}).empty())
            unknown_backup(id);
        header = read_header(owner_spi, *record);
        for (const auto& [name, target] : targets) {
            bool known = false;
            for (const BackupTable& table : header.tables) known = known || table.name == name;
            if (!known)
                throw Error(sqlstate::kInvalidParameterValue,
                            "table " + name + " is not in the backup", {},
                            "Name the tables as backup_rows() shows them (schema-qualified).");
        }
        for (const BackupTable& table : header.tables) {
            pg::Rows action =
                owner_spi.execute(delete_action, {pg::Arg::of(id), pg::Arg::text(table.name)});
            Changed c;
            const std::optional<std::string> how =
                action.empty() ? std::nullopt : action.text(0, 1);
            if (how && (header.version >= 2 || *how == "set null" || *how == "set default"))
                for (const auto& col : pg::text_array_elements(action.datum(0, 2).value()))
                    if (col) c.columns.push_back(std::string(*col));
            changed.push_back(std::move(c));
        }
    }

    std::vector<TableOutcome> outcomes;
    if (header.version >= 2) {
        outcomes = restore_format2(id, header, changed, targets, mode, dry_run);
    } else {  // format 1 (pg_batchguard 1.0): table by table, as 1.0 restored it
        pg::SpiSession spi(pg::SpiSession::Access::kReadWrite, pg::SpiSession::Identity::kAsCaller,
                           pg::SpiSession::SearchPath::kCallers);
        for (std::size_t i = 0; i < header.tables.size(); ++i) {
            pg::check_for_interrupts();
            auto named = targets.find(header.tables[i].name);
            outcomes.push_back(TableRestore(id, header.tables[i], mode, dry_run,
                                            named == targets.end() ? "" : named->second)
                                   .run(spi, changed[i].columns));
        }
    }
    std::int64_t inserted = 0, updated = 0, skipped = 0, conflicts = 0;
    std::string tables = "[";
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
        const TableOutcome& o = outcomes[i];
        inserted += o.inserted;
        updated += o.updated;
        skipped += o.skipped;
        conflicts += o.conflicts;
        if (i > 0) tables += ",";
        tables += "{\"table\":";
        append_json_string(tables, o.name);
        tables += ",\"rows\":" + std::to_string(o.rows) +
                  ",\"inserted\":" + std::to_string(o.inserted) +
                  ",\"updated\":" + std::to_string(o.updated) +
                  ",\"skipped\":" + std::to_string(o.skipped) +
                  ",\"conflicts\":" + std::to_string(o.conflicts) + "}";
    }
    tables += "]";
    const std::string totals =
        "\"on_conflict\":\"" + on_conflict + "\",\"dry_run\":" + (dry_run ? "true" : "false") +
        ",\"inserted\":" + std::to_string(inserted) + ",\"updated\":" + std::to_string(updated) +
        ",\"skipped\":" + std::to_string(skipped) + ",\"conflicts\":" + std::to_string(conflicts);
    std::string audited = totals;
    if (!targets.empty()) {
        audited += ",\"targets\":{";
        bool first = true;
        for (const auto& [name, target] : targets) {
            if (!first) audited += ",";
            first = false;
            append_json_string(audited, name);
            audited += ":";
            append_json_string(audited, target);
        }
        audited += "}";
    }
    if (!XactReadOnly) {  // a dry run may run in a read-only transaction: no audit row
        pg::SpiSession owner_spi;
        audit(owner_spi, *record, owner, "restore", "{" + audited + "}");
    }
    const std::string result =
        "{\"backup_id\":\"" + record->backup_id + "\"," + totals + ",\"tables\":" + tables + "}";
    return jsonb_datum(result);
}

}  // namespace

BATCHGUARD_FUNCTION(batchguard_restore_backup) {
    pg::require_not_null(fcinfo, 0, "backup_id");
    pg::require_not_null(fcinfo, 1, "on_conflict");
    pg::require_not_null(fcinfo, 2, "dry_run");
    return restore(PG_GETARG_DATUM(0), std::string(*pg::text_arg(fcinfo, 1)), PG_GETARG_BOOL(2),
                   {});
}

// 1.1: the caller names the table to restore into for some tables of the backup, whoever
// owns it (restore_backup refuses a table whose owner is neither the recorded one nor the
// caller: a look-alike created under the old name).
BATCHGUARD_FUNCTION(batchguard_restore_backup_into) {
    pg::require_not_null(fcinfo, 0, "backup_id");
    pg::require_not_null(fcinfo, 1, "targets");
    pg::require_not_null(fcinfo, 2, "on_conflict");
    pg::require_not_null(fcinfo, 3, "dry_run");
    const Targets targets = parse_targets(PG_GETARG_DATUM(1));
    return restore(PG_GETARG_DATUM(0), std::string(*pg::text_arg(fcinfo, 2)), PG_GETARG_BOOL(3),
                   targets);
}
