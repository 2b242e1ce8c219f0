// purge_with_backup (see docs/api.md, "Backups"): a delete of many rows in chunks, each
// chunk backed up and deleted by delete_with_backup in a transaction of its own and
// checkpointed as an item of a pg_batchguard batch, so that a purge stopped by a crash
// resumes where it stopped. The chunks (key ranges) are fixed when the batch starts.
//
// Its statements read the caller's table with the caller's search_path in effect (the
// caller's policies and triggers run as under a plain statement), so they name every
// function, operator and type with its schema: nothing on that path can capture them.
#include "backup/dynamic_sql.hpp"
#include "backup/export.hpp"
#include "core/error.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"
#include "pg/memory.hpp"
#include "pg/transaction.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "catalog/pg_operator.h"
#include "nodes/parsenodes.h"
#include "utils/typcache.h"
}

#include <string>
#include <vector>

using namespace batchguard;
using namespace batchguard::backup;

namespace {

struct Source {
    std::string name;      // schema-qualified and quoted
    std::string key;       // the primary key column, quoted
    std::string key_type;  // schema-qualified, with its typmod
    // The key type's btree operators, as OPERATOR(schema.op): the ones its ORDER BY uses.
    std::string eq, ge, le;
};

std::optional<std::string> text_of(const pg::Rows& rows, int column) {
    if (rows.empty()) return std::nullopt;
    return rows.text(0, column);
}

// OPERATOR(schema.name) of an operator.
std::string qualified_operator(Oid opno) {
    return pg::pg_call([&] {
        HeapTuple tuple = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
        if (!HeapTupleIsValid(tuple)) elog(ERROR, "cache lookup failed for operator %u", opno);
        auto* form = reinterpret_cast<Form_pg_operator>(GETSTRUCT(tuple));
        const char* schema = quote_identifier(get_namespace_name(form->oprnamespace));
        char* text = psprintf("OPERATOR(%s.%s)", schema, NameStr(form->oprname));
        ReleaseSysCache(tuple);
        return text;
    });
}

Source describe(Oid relid) {
    pg::Rows r = run_dynamic(
        "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), k.attname::pg_catalog.text,"
        "       k.atttypid, k.atttypmod,"
        "       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_index i"
        "         WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid AND i.indisprimary"
        "           AND i.indnatts OPERATOR(pg_catalog.=) 1)"
        "  FROM pg_catalog.pg_class c"
        "  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
        "  LEFT JOIN pg_catalog.pg_index i"
        "    ON i.indrelid OPERATOR(pg_catalog.=) c.oid AND i.indisprimary"
        "  LEFT JOIN pg_catalog.pg_attribute k"
        "    ON k.attrelid OPERATOR(pg_catalog.=) c.oid"
        "   AND k.attnum OPERATOR(pg_catalog.=) i.indkey[0]"
        " WHERE c.oid OPERATOR(pg_catalog.=) $1"
        "   AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog.\"char\"[])",
        {{OIDOID, pg::Arg::of(ObjectIdGetDatum(relid))}}, true);
    if (r.empty()) throw Error(sqlstate::kWrongObjectType, "purge_with_backup purges tables only");
    Source s;
    s.name = r.text(0, 1).value();
    if (r.int8(0, 5).value_or(0) != 1 || !r.text(0, 2))
        throw Error(sqlstate::kInvalidParameterValue,
                    "table " + s.name + " has no single-column primary key",
                    "purge_with_backup cuts the rows into ranges of their primary key.");
    const Oid type = DatumGetObjectId(r.datum(0, 3).value());
    const std::int32_t typmod = r.int4(0, 4).value();
    const std::string column = r.text(0, 2).value();
    Oid eq = InvalidOid, ge = InvalidOid, le = InvalidOid;
    pg::pg_call([&] {
        s.key = quote_identifier(column.c_str());
        s.key_type = format_type_extended(type, typmod,
                                          FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
        TypeCacheEntry* entry = lookup_type_cache(type, TYPECACHE_BTREE_OPFAMILY);
        if (OidIsValid(entry->btree_opf)) {
            const Oid opf = entry->btree_opf, in = entry->btree_opintype;
            eq = get_opfamily_member(opf, in, in, BTEqualStrategyNumber);
            ge = get_opfamily_member(opf, in, in, BTGreaterEqualStrategyNumber);
            le = get_opfamily_member(opf, in, in, BTLessEqualStrategyNumber);
        }
    });
    if (!OidIsValid(eq) || !OidIsValid(ge) || !OidIsValid(le))
        throw Error(sqlstate::kInvalidParameterValue,
                    "the primary key of table " + s.name + " has no ordering",
                    "purge_with_backup cuts the rows into ranges of their primary key, which "
                    "needs a btree operator class of type " +
                        s.key_type + ".");
    s.eq = qualified_operator(eq);
    s.ge = qualified_operator(ge);
    s.le = qualified_operator(le);
    return s;
}

}  // namespace

BATCHGUARD_FUNCTION(batchguard_purge_with_backup) {
    pg::require_not_null(fcinfo, 0, "job_id");
    pg::require_not_null(fcinfo, 1, "source");
    pg::require_not_null(fcinfo, 3, "chunk_size");
    pg::require_not_null(fcinfo, 5, "all_rows");
    const std::string job_id(*pg::text_arg(fcinfo, 0));
    const Oid relid = PG_GETARG_OID(1);
    const bool has_ids = !PG_ARGISNULL(2);
    const Datum ids_datum = has_ids ? PG_GETARG_DATUM(2) : Datum(0);
    const std::int32_t chunk_size = PG_GETARG_INT32(3);
    const bool has_retention = !PG_ARGISNULL(4);
    const Datum retention_datum = has_retention ? PG_GETARG_DATUM(4) : Datum(0);
    const bool all_rows = PG_GETARG_BOOL(5);
    if (!has_ids && !all_rows)
        throw Error(sqlstate::kNullValueNotAllowed, "ids must not be NULL", {},
                    "Pass all_rows => true to purge every row of the table.");
    if (has_ids && all_rows)
        throw Error(sqlstate::kInvalidParameterValue,
                    "ids and all_rows => true exclude each other");
    if (chunk_size <= 0)
        throw Error(sqlstate::kInvalidParameterValue, "chunk_size must be positive");
    // Every argument is checked before the batch is committed: a bad one leaves nothing.
    if (has_ids) {
        pg::require_array_within_limit(ids_datum, "ids");
        (void)pg::text_array_without_nulls(ids_datum, "ids");
    }
    validate_retention(has_retention ? std::optional<Datum>(retention_datum) : std::nullopt);
    auto* call = reinterpret_cast<CallContext*>(fcinfo->context);
    if (call == nullptr || !IsA(call, CallContext) || call->atomic)
        throw Error(sqlstate::kActiveSqlTransaction,
                    "purge_with_backup must be called outside a transaction block",
                    "Each chunk commits on its own, which a transaction block or a function "
                    "call cannot allow.",
                    "CALL batchguard.purge_with_backup(...) as a statement of its own.");
    pg::require_read_committed("purge_with_backup", kLockedRowsHint);
    pg::set_error_context("pg_batchguard purge " + job_id);

    pg::NonAtomicSpi spi;
    const Source source = describe(relid);
    // 1. The batch: found (resume), or planned now and committed before any delete.
    pg::Rows existing = run_dynamic(
        "SELECT b.metadata OPERATOR(pg_catalog.->) 'purge' OPERATOR(pg_catalog.->>) 'source',"
        "       pg_catalog.jsonb_array_length(b.metadata OPERATOR(pg_catalog.->) 'purge'"
        "                                     OPERATOR(pg_catalog.->) 'ranges')::pg_catalog.int8"
        "  FROM batchguard.batches b"
        " WHERE b.owner OPERATOR(pg_catalog.=) batchguard.current_owner()"
        "   AND b.job_id OPERATOR(pg_catalog.=) $1",
        {{TEXTOID, pg::Arg::text(job_id)}}, false);
    std::int64_t chunks = 0;
    if (!existing.empty()) {
        if (text_of(existing, 1) != source.name)
            throw Error(sqlstate::kDuplicateObject,
                        "job " + job_id + " exists and is not a purge of " + source.name, {},
                        "Use another job_id.");
        chunks = existing.int8(0, 2).value();
    } else {
        // Ranges are kept as the key's text form (its type's output function: a cast to
        // text could be anyone's code for a type of theirs) and read back as the key type.
        const std::string where = has_ids ? " WHERE bg_t." + source.key + " " + source.eq +
                                                " ANY ($1::pg_catalog.text[]::" + source.key_type +
                                                "[])"
                                          : "";
        const std::string plan =
            "WITH bg_keys AS (SELECT bg_t." + source.key +
            " AS k, (pg_catalog.row_number() OVER (ORDER BY bg_t." + source.key +
            ") OPERATOR(pg_catalog.-) 1) OPERATOR(pg_catalog./) $2 AS n FROM " + source.name +
            " bg_t" + where +
            "), bg_ranges AS (SELECT n, pg_catalog.format('%s', pg_catalog.min(k)) AS lo,"
            " pg_catalog.format('%s', pg_catalog.max(k)) AS hi FROM bg_keys GROUP BY n)"
            " SELECT p.job_id, (SELECT pg_catalog.count(*) FROM bg_ranges)::pg_catalog.int8"
            "   FROM batchguard.start_batch($3,"
            "        ARRAY(SELECT 'chunk-' OPERATOR(pg_catalog.||)"
            "                     (n OPERATOR(pg_catalog.+) 1)::pg_catalog.text"
            "                FROM bg_ranges ORDER BY n), NULL,"
            "        pg_catalog.jsonb_build_object('purge', pg_catalog.jsonb_build_object("
            "            'source', $4::pg_catalog.text, 'ids', $1::pg_catalog.text[],"
            "            'retention', $5::pg_catalog.interval::pg_catalog.text,"
            "            'ranges', coalesce((SELECT pg_catalog.jsonb_agg("
            "                pg_catalog.jsonb_build_array(lo, hi) ORDER BY n) FROM bg_ranges),"
            "                '[]'::pg_catalog.jsonb)))) p";
        pg::Rows planned = run_dynamic(
            plan,
            {{TEXTARRAYOID, has_ids ? pg::Arg::of(ids_datum) : pg::Arg::null()},
             {INT8OID, pg::Arg::int8(chunk_size)},
             {TEXTOID, pg::Arg::text(job_id)},
             {TEXTOID, pg::Arg::text(source.name)},
             {INTERVALOID, has_retention ? pg::Arg::of(retention_datum) : pg::Arg::null()}},
            false);
        chunks = planned.int8(0, 2).value();
        spi.commit();
    }

    // 2. Each chunk not completed yet: its rows backed up and deleted, the item completed,
    //    all in one transaction.
    const std::string purge_of_job =
        "(SELECT b.metadata OPERATOR(pg_catalog.->) 'purge' FROM batchguard.batches b"
        "  WHERE b.owner OPERATOR(pg_catalog.=) batchguard.current_owner()"
        "    AND b.job_id OPERATOR(pg_catalog.=) $1)";
    const std::string chunk_ids =
        "SELECT ARRAY(SELECT pg_catalog.format('%s', bg_t." + source.key + ") FROM " + source.name +
        " bg_t, " + purge_of_job +
        " AS p(purge), pg_catalog.jsonb_array_element(p.purge OPERATOR(pg_catalog.->) "
        "'ranges', $2) r"
        " WHERE bg_t." +
        source.key + " " + source.ge + " (r OPERATOR(pg_catalog.->>) 0)::" + source.key_type +
        " AND bg_t." + source.key + " " + source.le +
        " (r OPERATOR(pg_catalog.->>) 1)::" + source.key_type +
        "   AND (p.purge OPERATOR(pg_catalog.->) 'ids' OPERATOR(pg_catalog.=)"
        "        'null'::pg_catalog.jsonb"
        "        OR bg_t." +
        source.key + " " + source.eq +
        " ANY (ARRAY(SELECT pg_catalog.jsonb_array_elements_text("
        "      p.purge OPERATOR(pg_catalog.->) 'ids'))::" +
        source.key_type +
        "[]))"
        " ORDER BY bg_t." +
        source.key +
        "),"
        " " +
        purge_of_job +
        " OPERATOR(pg_catalog.->>) 'retention',"
        " batchguard.is_item_completed($1, $3),"
        " (SELECT b.state FROM batchguard.batches b"
        "   WHERE b.owner OPERATOR(pg_catalog.=) batchguard.current_owner()"
        "     AND b.job_id OPERATOR(pg_catalog.=) $1)";
    // Each chunk's arguments, id arrays and results go to a context reset for the next one
    // (SPI's own context lives as long as the CALL, across the commits).
    pg::ScratchContext per_chunk("purge_with_backup chunk");
    for (std::int64_t n = 0; n < chunks; ++n) {
        pg::check_for_interrupts();
        per_chunk.reset();
        pg::ContextSwitch chunk_memory(per_chunk.get());
        const std::string item = "chunk-" + std::to_string(n + 1);
        pg::Rows r = run_dynamic(chunk_ids,
                                 {{TEXTOID, pg::Arg::text(job_id)},
                                  {INT4OID, pg::Arg::int4(static_cast<std::int32_t>(n))},
                                  {TEXTOID, pg::Arg::text(item)}},
                                 false);
        if (r.boolean(0, 3).value_or(false)) continue;            // done before a restart
        if (text_of(r, 4).value_or("active") != "active") break;  // paused or cancelled
        const Datum chunk = r.datum(0, 1).value();
        const std::optional<std::string> kept = r.text(0, 2);
        std::string result = "'{}'::pg_catalog.jsonb";
        if (!pg::text_array_elements(chunk).empty()) {
            pg::Rows d = run_dynamic(
                "SELECT pg_catalog.jsonb_build_object("
                "       'backup_id', r OPERATOR(pg_catalog.->) 'backup'"
                "                      OPERATOR(pg_catalog.->) 'backup_id',"
                "       'deleted', r OPERATOR(pg_catalog.->) 'deleted',"
                "       'rows', r OPERATOR(pg_catalog.->) 'backup'"
                "                 OPERATOR(pg_catalog.->) 'total_rows')::pg_catalog.text"
                "  FROM batchguard.delete_with_backup($1::pg_catalog.regclass, $2, "
                "$3::pg_catalog.interval,"
                "       $4) r",
                {{OIDOID, pg::Arg::of(ObjectIdGetDatum(relid))},
                 {TEXTARRAYOID, pg::Arg::of(chunk)},
                 {TEXTOID, kept ? pg::Arg::text(*kept) : pg::Arg::null()},
                 {TEXTOID, pg::Arg::text("purge " + job_id + " " + item)}},
                false);
            result = d.text(0, 1).value();
        } else {
            result = "{\"deleted\":0}";
        }
        run_dynamic("SELECT batchguard.complete_item($1, $2, $3::pg_catalog.jsonb)",
                    {{TEXTOID, pg::Arg::text(job_id)},
                     {TEXTOID, pg::Arg::text(item)},
                     {TEXTOID, pg::Arg::text(result)}},
                    false);
        spi.commit();
    }
    return static_cast<Datum>(0);
}
