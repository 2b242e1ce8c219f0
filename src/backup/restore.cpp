// restore_backup (see docs/api.md, "Backups"): puts a backup's rows back, parents before
// children, with the caller's privileges, through jsonb_populate_record of each table's
// current row type (PostgreSQL's own JSON -> row conversion).
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

class TableRestore {
  public:
    TableRestore(Datum backup_id, const BackupTable& table, OnConflict mode, bool dry_run)
        : backup_id_(backup_id), table_(table), mode_(mode), dry_run_(dry_run) {}

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
                args(), true);
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
            pg::Rows counts = run_dynamic(sql, args(), false);
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
        pg::Rows t = spi.execute(resolve_table, {pg::Arg::text(table_.name)});
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

    std::vector<DynamicArg> args() const {
        return {{UUIDOID, pg::Arg::of(backup_id_)}, {TEXTOID, pg::Arg::text(table_.name)}};
    }

    std::string src() const {
        return "WITH bg_src AS MATERIALIZED (SELECT bg_r.* FROM batchguard.backup_rows($1) bg_b"
               " CROSS JOIN LATERAL pg_catalog.jsonb_populate_record(NULL::" +
               name_ + ", bg_b.\"row\") bg_r WHERE bg_b.table_name = $2) ";
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
    Oid relid_ = InvalidOid;
    std::string name_;
    std::vector<std::string> insert_, identity_, match_;
    std::vector<std::pair<std::string, std::string>> sequences_;
};

}  // namespace

BATCHGUARD_FUNCTION(batchguard_restore_backup) {
    pg::require_not_null(fcinfo, 0, "backup_id");
    const Datum id = PG_GETARG_DATUM(0);
    pg::require_not_null(fcinfo, 1, "on_conflict");
    pg::require_not_null(fcinfo, 2, "dry_run");
    const std::string on_conflict(*pg::text_arg(fcinfo, 1));
    const bool dry_run = PG_GETARG_BOOL(2);
    OnConflict mode = OnConflict::kError;
    if (on_conflict == "skip")
        mode = OnConflict::kSkip;
    else if (on_conflict == "update")
        mode = OnConflict::kUpdate;
    else if (on_conflict != "error")
        throw Error(sqlstate::kInvalidParameterValue,
                    "on_conflict must be 'error', 'skip' or 'update'",
                    "on_conflict is '" + on_conflict + "'.");
    pg::set_error_context("pg_batchguard backup " + uuid_text(id));
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
        for (const BackupTable& table : header.tables) {
            pg::Rows action =
                owner_spi.execute(delete_action, {pg::Arg::of(id), pg::Arg::text(table.name)});
            Changed c;
            const std::optional<std::string> how =
                action.empty() ? std::nullopt : action.text(0, 1);
            if (how && (*how == "set null" || *how == "set default"))
                for (const auto& col : pg::text_array_elements(action.datum(0, 2).value()))
                    if (col) c.columns.push_back(std::string(*col));
            changed.push_back(std::move(c));
        }
    }

    std::vector<TableOutcome> outcomes;
    {
        pg::SpiSession spi(pg::SpiSession::Access::kReadWrite, pg::SpiSession::Identity::kAsCaller);
        for (std::size_t i = 0; i < header.tables.size(); ++i) {
            pg::check_for_interrupts();
            outcomes.push_back(
                TableRestore(id, header.tables[i], mode, dry_run).run(spi, changed[i].columns));
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
    if (!XactReadOnly) {  // a dry run may run in a read-only transaction: no audit row
        pg::SpiSession owner_spi;
        audit(owner_spi, *record, owner, "restore", "{" + totals + "}");
    }
    const std::string result =
        "{\"backup_id\":\"" + record->backup_id + "\"," + totals + ",\"tables\":" + tables + "}";
    return jsonb_datum(result);
}
