// SQL entry points of backups (see docs/api.md, "Backups").
#include "backup/export.hpp"
#include "backup/store.hpp"
#include "core/backup_format.hpp"
#include "core/json_events.hpp"
#include "core/error.hpp"
#include "core/zstd_stream.hpp"
#include "pg/datum.hpp"
#include "pg/files.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"
#include "pg/jsonb_build.hpp"
#include "pg/memory.hpp"
#include "pg/result_row.hpp"
#include "pg/settings.hpp"
#include "pg/sha256.hpp"

extern "C" {
#include "access/htup_details.h"
#include "mb/pg_wchar.h"
#include "utils/tuplestore.h"
}

#include <memory>
#include <optional>
#include <string>

using namespace batchguard;
using namespace batchguard::backup;

namespace {

pg::Statement row_of{"SELECT b FROM batchguard.backups b WHERE b.backup_id = $1", {UUIDOID}};
pg::Statement rows_of_owner{
    "SELECT b, b.backup_id FROM batchguard.backups b WHERE b.owner = $1"
    " ORDER BY b.created_at DESC, b.backup_id",
    {TEXTOID}};
pg::Statement delete_row{"DELETE FROM batchguard.backups WHERE backup_id = $1", {UUIDOID}};
pg::Statement extend_check{
    "SELECT $2 > pg_catalog.now(), $2 <= $3 + pg_catalog.make_interval(secs => $4),"
    "       $2 >= $5, ($3 + pg_catalog.make_interval(secs => $4))::pg_catalog.text",
    {UUIDOID, TIMESTAMPTZOID, TIMESTAMPTZOID, FLOAT8OID, TIMESTAMPTZOID}};
pg::Statement set_expiry{"UPDATE batchguard.backups SET expires_at = $2 WHERE backup_id = $1",
                         {UUIDOID, TIMESTAMPTZOID}};
pg::Statement set_hold{
    "UPDATE batchguard.backups SET legal_hold = $2, legal_hold_by = $3 WHERE backup_id = $1",
    {UUIDOID, BOOLOID, TEXTOID}};
pg::Statement set_hold_1_0{"UPDATE batchguard.backups SET legal_hold = $2 WHERE backup_id = $1",
                           {UUIDOID, BOOLOID}};

Datum uuid_arg(FunctionCallInfo fcinfo, int n = 0) {
    pg::require_not_null(fcinfo, n, "backup_id");
    const Datum id = PG_GETARG_DATUM(n);
    pg::set_error_context("pg_batchguard backup " + uuid_text(id));
    return id;
}

// The row as the caller sees it: its stored values with the live status, built in
// `target` (never in SPI's memory, which SPI_finish frees before the caller reads it).
Datum current_row(pg::SpiSession& spi, const BackupRecord& record, Datum id, MemoryContext target) {
    pg::Rows rows = spi.execute(row_of, {pg::Arg::of(id)});
    return with_status(rows.datum(0, 1).value(), live_status(record, spi), target);
}

// A whole file in one bytea, or a chunk of it.
struct Chunk {
    bytea* data = nullptr;
    std::int64_t offset = 0, length = 0;
    std::int64_t file_size = 0;
    bool whole = false;
};

// This session's download in progress: a chunk that continues it (same backup, at the
// offset where the last chunk ended) is neither audited nor logged, so a file read in
// chunks gives one audit row when it starts and one when it reaches the end.
struct DownloadInProgress {
    std::string backup_id;
    std::int64_t next_offset = -1;
    bool from_start = false;
};
DownloadInProgress download;

Chunk read_chunk(pg::SpiSession& spi, const BackupRecord& record, std::int64_t offset,
                 std::optional<std::int64_t> length, MemoryContext target) {
    std::unique_ptr<BackupSource> file = open_backup_source(record, spi, false);
    const auto size = static_cast<std::int64_t>(file->size());
    if (offset > size)
        throw Error(sqlstate::kInvalidParameterValue,
                    "offset " + std::to_string(offset) + " is beyond the end of the backup",
                    "The backup file has " + std::to_string(size) + " bytes.");
    Chunk chunk;
    chunk.file_size = size;
    chunk.offset = offset;
    chunk.length = std::min(length.value_or(size - offset), size - offset);
    chunk.whole = offset == 0 && chunk.length == size;
    if (chunk.length > static_cast<std::int64_t>(MaxAllocSize - VARHDRSZ))
        throw Error(sqlstate::kProgramLimitExceeded, "backup chunk too large for a bytea",
                    "The file has " + std::to_string(size) + " bytes.",
                    "Read it in chunks with read_backup(backup_id, offset, length).");
    std::unique_ptr<Hasher> hash = chunk.whole ? pg::make_sha256() : nullptr;
    chunk.data = pg::pg_call([&] {
        auto* b = static_cast<bytea*>(MemoryContextAlloc(target, VARHDRSZ + chunk.length));
        SET_VARSIZE(b, VARHDRSZ + chunk.length);
        return b;
    });
    file->seek(static_cast<std::uint64_t>(offset));
    std::int64_t done = 0;
    while (done < chunk.length) {
        pg::check_for_interrupts();
        const std::size_t want =
            static_cast<std::size_t>(std::min<std::int64_t>(chunk.length - done, 1 << 20));
        const std::size_t n = file->read(VARDATA(chunk.data) + done, want);
        if (n == 0)
            throw Error(sqlstate::kBackupCorrupt, "backup " + record.backup_id + " is corrupt",
                        "The file is shorter than expected.");
        if (hash) hash->update(VARDATA(chunk.data) + done, n);
        done += static_cast<std::int64_t>(n);
    }
    if (hash) {
        const std::string actual = hash->finish_hex();
        if (actual != record.file_sha256) sha256_mismatch(record, actual);
    }
    return chunk;
}

// backup_rows: the state of one scan, owned by the SRF's memory context.
struct RowsScan {
    BackupRecord record;
    std::unique_ptr<BackupSource> file;
    std::unique_ptr<ZstdReader> zstd;
    std::unique_ptr<BackupStreamReader> stream;
    bool convert = false;
    MemoryContext memory = nullptr;  // the scan's (multi-call) context
    // Table names repeat on every row: their text datums are made once per scan.
    std::vector<std::pair<std::string, Datum>> names;
    // The result row and the positions of its columns in the installed type.
    std::optional<pg::ResultRow> result;
    int table_column = -1, row_column = -1, parent_column = -1, key_column = -1;
    std::string json;   // the row's JSON, NUL-terminated for jsonb_in (other encodings)
    JsonEvents events;  // the row's JSON, parsed once (UTF-8 databases)

    Datum name_datum(const std::string& name) {
        for (const auto& [known, datum] : names)
            if (known == name) return datum;
        Datum datum = pg::pg_call([&] {
            MemoryContext old = MemoryContextSwitchTo(memory);
            Datum d = convert ? CStringGetTextDatum(pg_any_to_server(
                                    name.data(), static_cast<int>(name.size()), PG_UTF8))
                              : PointerGetDatum(cstring_to_text_with_len(
                                    name.data(), static_cast<int>(name.size())));
            MemoryContextSwitchTo(old);
            return d;
        });
        names.emplace_back(name, datum);
        return datum;
    }
};

void free_scan(void* arg) {
    // Closes the file and frees the zstd context, whatever ended the scan (end, LIMIT, error).
    delete static_cast<RowsScan*>(arg);
}

Datum text_or_null(const std::optional<std::string>& s, bool& is_null, bool convert) {
    is_null = !s.has_value();
    if (is_null) return 0;
    if (!convert) return pg::text_datum(*s);
    return pg::pg_call([&] {
        char* server = pg_any_to_server(s->data(), static_cast<int>(s->size()), PG_UTF8);
        return CStringGetTextDatum(server);
    });
}

}  // namespace

BATCHGUARD_FUNCTION(batchguard_export_backup) {
    pg::require_not_null(fcinfo, 0, "source");
    pg::require_not_null(fcinfo, 2, "include_children");
    ExportRequest request;
    request.source = PG_GETARG_OID(0);
    if (!PG_ARGISNULL(1)) {
        const Datum ids = PG_GETARG_DATUM(1);
        pg::require_array_within_limit(ids, "ids");
        (void)pg::text_array_without_nulls(ids, "ids");
        request.ids = ids;
    }
    request.include_children = PG_GETARG_BOOL(2);
    if (!PG_ARGISNULL(3)) request.retention = PG_GETARG_DATUM(3);
    if (auto label = pg::text_arg(fcinfo, 4)) request.label = std::string(*label);
    return export_backup(request).row;
}

BATCHGUARD_FUNCTION(batchguard_get_backup) {
    const Datum id = uuid_arg(fcinfo);
    const std::string owner = pg::current_owner();
    pg::SpiSession spi(pg::SpiSession::Access::kReadOnly);
    std::optional<BackupRecord> record = find_backup(spi, id, owner, false, false);
    if (!record) PG_RETURN_NULL();
    return current_row(spi, *record, id, spi.caller_context());
}

BATCHGUARD_FUNCTION(batchguard_get_user_backups) {
    const std::string owner = pg::current_owner();
    pg::pg_call([&] { InitMaterializedSRF(fcinfo, 0); });
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    pg::SpiSession spi(pg::SpiSession::Access::kReadOnly);
    pg::Rows rows = spi.execute(rows_of_owner, {pg::Arg::text(owner)});
    std::vector<Datum> ids;
    for (std::uint64_t r = 0; r < rows.size(); ++r) ids.push_back(rows.datum(r, 2).value());
    // Each backup's row is built in a context reset for the next one (the tuplestore
    // keeps its own copy).
    pg::ScratchContext per_row("get_user_backups row");
    for (const Datum id : ids) {
        pg::check_for_interrupts();
        per_row.reset();
        std::optional<BackupRecord> record = find_backup(spi, id, owner, false, false);
        if (!record) continue;
        const Datum row = current_row(spi, *record, id, per_row.get());
        pg::pg_call([&] {
            HeapTupleHeader header = DatumGetHeapTupleHeader(row);
            HeapTupleData tuple;
            tuple.t_len = HeapTupleHeaderGetDatumLength(header);
            ItemPointerSetInvalid(&tuple.t_self);
            tuple.t_tableOid = InvalidOid;
            tuple.t_data = header;
            tuplestore_puttuple(rsinfo->setResult, &tuple);
        });
    }
    return 0;
}

BATCHGUARD_FUNCTION(batchguard_read_backup) {
    const Datum id = uuid_arg(fcinfo);
    pg::require_not_null(fcinfo, 1, "offset");
    const std::int64_t offset = PG_GETARG_INT64(1);
    const std::optional<std::int64_t> length = pg::int8_arg(fcinfo, 2);
    if (offset < 0) throw Error(sqlstate::kInvalidParameterValue, "offset must not be negative");
    if (length && *length < 0)
        throw Error(sqlstate::kInvalidParameterValue, "length must not be negative");
    const std::string owner = pg::current_owner();
    const MemoryContext caller = CurrentMemoryContext;
    pg::SpiSession spi;
    std::optional<BackupRecord> record = find_backup(spi, id, owner, false, false);
    if (!record) unknown_backup(id);
    const Chunk chunk = read_chunk(spi, *record, offset, length, caller);
    const bool continues = download.backup_id == record->backup_id &&
                           download.next_offset == chunk.offset && chunk.offset > 0;
    const bool from_start = chunk.offset == 0 || (continues && download.from_start);
    const bool reaches_end = chunk.offset + chunk.length == chunk.file_size;
    // Audited: the first chunk, the chunk that reaches the end (complete: this session
    // served the whole file in order; verified: the file's SHA-256 was checked, i.e. it
    // was read in one call) and any chunk that does not continue this session's download.
    if (!continues || reaches_end)
        audit(spi, *record, owner, "download",
              "{\"offset\":" + std::to_string(chunk.offset) +
                  ",\"length\":" + std::to_string(chunk.length) +
                  ",\"complete\":" + (reaches_end && from_start ? "true" : "false") +
                  ",\"verified\":" + (chunk.whole ? "true" : "false") + "}");
    download = {record->backup_id, chunk.offset + chunk.length, from_start};
    return PointerGetDatum(chunk.data);
}

BATCHGUARD_FUNCTION(batchguard_backup_rows) {
    FuncCallContext* funcctx = nullptr;
    if (SRF_IS_FIRSTCALL()) {
        const Datum id = uuid_arg(fcinfo);
        const std::string owner = pg::current_owner();
        funcctx = pg::pg_call([&] { return SRF_FIRSTCALL_INIT(); });
        std::unique_ptr<RowsScan> scan = std::make_unique<RowsScan>();
        {
            pg::SpiSession spi(pg::SpiSession::Access::kReadOnly);
            std::optional<BackupRecord> record = find_backup(spi, id, owner, false, false);
            if (!record) unknown_backup(id);
            scan->record = *record;
            // In the multi-call context, not SPI's (freed when this session ends): the
            // source's SHA-256 context outlives this call.
            pg::ContextSwitch scan_memory(funcctx->multi_call_memory_ctx);
            scan->file = open_backup_source(scan->record, spi, true);
        }
        TupleDesc desc = nullptr;
        pg::pg_call([&] {
            MemoryContext old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
            if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
                elog(ERROR, "backup_rows must return a composite type");
            funcctx->tuple_desc = BlessTupleDesc(desc);
            MemoryContextSwitchTo(old);
        });
        scan->result.emplace(funcctx->tuple_desc);
        scan->table_column = scan->result->position("table_name");
        scan->row_column = scan->result->position("row");
        scan->parent_column = scan->result->position("parent_table");
        scan->key_column = scan->result->position("parent_key");
        {
            // What the scan keeps across calls (the SHA-256 contexts, which are palloc'd
            // when PostgreSQL is built without OpenSSL) lives in the multi-call context.
            pg::ContextSwitch scan_memory(funcctx->multi_call_memory_ctx);
            scan->zstd = std::make_unique<ZstdReader>(*scan->file);
            scan->stream = std::make_unique<BackupStreamReader>(*scan->zstd, pg::make_sha256());
        }
        scan->convert = GetDatabaseEncoding() != PG_UTF8 && GetDatabaseEncoding() != PG_SQL_ASCII;
        scan->memory = funcctx->multi_call_memory_ctx;
        RowsScan* raw = scan.release();
        pg::pg_call([&] {
            auto* callback = static_cast<MemoryContextCallback*>(MemoryContextAllocZero(
                funcctx->multi_call_memory_ctx, sizeof(MemoryContextCallback)));
            callback->func = free_scan;
            callback->arg = raw;
            MemoryContextRegisterResetCallback(funcctx->multi_call_memory_ctx, callback);
        });
        funcctx->user_fctx = raw;
        raw->stream->header();
    }
    funcctx = SRF_PERCALL_SETUP();  // reads fn_extra: cannot fail
    auto* scan = static_cast<RowsScan*>(funcctx->user_fctx);
    pg::check_for_interrupts();
    std::optional<RowLine> row = scan->stream->next_row();
    if (!row) {
        const std::string actual = scan->file->sha256_hex();
        if (actual != scan->record.file_sha256) sha256_mismatch(scan->record, actual);
        pg::pg_call([&] { SRF_RETURN_DONE(funcctx); });
        return 0;
    }
    pg::ResultRow& out = *scan->result;
    out.set(scan->table_column, scan->name_datum(row->table));
    if (scan->convert) {
        scan->json.assign(row->row);
        out.set(scan->row_column, pg::pg_call([&] {
                    const char* json = pg_any_to_server(
                        scan->json.c_str(), static_cast<int>(scan->json.size()), PG_UTF8);
                    return DirectFunctionCall1(jsonb_in, CStringGetDatum(json));
                }));
    } else {
        scan->events.parse(row->row, "backup row");
        out.set(scan->row_column, pg::jsonb_from_events(scan->events));
    }
    if (row->parent_table)
        out.set(scan->parent_column, scan->name_datum(*row->parent_table));
    else
        out.set_null(scan->parent_column);
    bool key_null = false;
    const Datum key = text_or_null(row->parent_key, key_null, scan->convert);
    if (key_null)
        out.set_null(scan->key_column);
    else
        out.set(scan->key_column, key);
    HeapTuple tuple = out.form();  // pg_call inside: never nest it in another pg_call
    Datum result = pg::pg_call([&] { return HeapTupleGetDatum(tuple); });
    SRF_RETURN_NEXT(funcctx, result);  // sets the call counter and isDone: cannot fail
}

BATCHGUARD_FUNCTION(batchguard_delete_backup) {
    const Datum id = uuid_arg(fcinfo);
    const std::string owner = pg::current_owner();
    pg::SpiSession spi;
    std::optional<BackupRecord> record = find_backup(spi, id, owner, false, true);
    if (!record) return BoolGetDatum(false);
    if (record->legal_hold)
        throw Error(sqlstate::kObjectNotInPrerequisiteState,
                    "backup " + record->backup_id + " is on legal hold", {},
                    "Release the hold with hold_backup(backup_id, false) first.");
    spi.execute(delete_row, {pg::Arg::of(id)});
    forget_backup_bytes(spi, *record);
    audit(spi, *record, owner, "delete", "{}");
    return BoolGetDatum(true);
}

BATCHGUARD_FUNCTION(batchguard_extend_backup) {
    const Datum id = uuid_arg(fcinfo);
    pg::require_not_null(fcinfo, 1, "until");
    const Datum until = PG_GETARG_DATUM(1);
    const std::string owner = pg::current_owner();
    pg::SpiSession spi;
    std::optional<BackupRecord> record = find_backup(spi, id, owner, false, true);
    if (!record) unknown_backup(id);
    // Like hold_backup, extending revives a backup that expired but that the cleanup has
    // not removed yet (the row lock taken by find_backup keeps the cleanup away).
    pg::Rows check = spi.execute(
        extend_check,
        {pg::Arg::of(id), pg::Arg::of(until), pg::Arg::of(TimestampTzGetDatum(record->created_at)),
         pg::Arg::of(Float8GetDatum(batchguard::settings::max_backup_retention_s)),
         pg::Arg::of(TimestampTzGetDatum(record->expires_at))});
    if (!check.boolean(0, 1).value())
        throw Error(sqlstate::kInvalidParameterValue, "until must be in the future");
    if (!check.boolean(0, 2).value())
        throw Error(sqlstate::kInvalidParameterValue,
                    "until is later than batchguard.max_backup_retention allows",
                    "The backup can be kept until " + check.text(0, 4).value() + " at most.",
                    "A legal hold (hold_backup) keeps a backup without a time limit.");
    if (!check.boolean(0, 3).value())
        throw Error(sqlstate::kInvalidParameterValue,
                    "until is earlier than the backup's current expiry", {},
                    "Delete a backup you no longer need with delete_backup().");
    spi.execute(set_expiry, {pg::Arg::of(id), pg::Arg::of(until)});
    audit(spi, *record, owner, "extend", "{}");
    std::optional<BackupRecord> now = find_backup(spi, id, owner, false, false);
    return current_row(spi, now ? *now : *record, id, spi.caller_context());
}

BATCHGUARD_FUNCTION(batchguard_hold_backup) {
    const Datum id = uuid_arg(fcinfo);
    pg::require_not_null(fcinfo, 1, "hold");
    const bool hold = PG_GETARG_BOOL(1);
    const std::string owner = pg::current_owner();
    const bool admin = pg::current_user_is_admin();
    pg::SpiSession spi;
    std::optional<BackupRecord> record = find_backup(spi, id, owner, admin, true);
    if (!record) unknown_backup(id);
    // A hold an administrator placed is released by an administrator only, and the owner
    // holding it again does not make it the owner's.
    const bool admin_hold = record->legal_hold && record->legal_hold_by == "admin";
    if (!hold && admin_hold && !admin)
        throw Error(
            sqlstate::kInsufficientPrivilege,
            "the legal hold of backup " + record->backup_id + " was placed by an administrator", {},
            "Only members of batchguard_admin can release it.");
    const char* by = !hold ? nullptr : (admin || admin_hold ? "admin" : "owner");
    if (pg::extension_column_exists("backups", "legal_hold_by"))
        spi.execute(set_hold, {pg::Arg::of(id), pg::Arg::boolean(hold),
                               by != nullptr ? pg::Arg::text(by) : pg::Arg::null()});
    else
        spi.execute(set_hold_1_0, {pg::Arg::of(id), pg::Arg::boolean(hold)});
    // The hold marker next to the file keeps it if the database is dropped; a released
    // hold's marker is removed by the next maintenance round.
    if (hold) mark_held(spi, *record);
    audit(spi, *record, owner, hold ? "hold" : "release",
          std::string("{\"by\": \"") + (admin ? "admin" : "owner") + "\"}");
    record->legal_hold = hold;
    record->expired = false;  // recomputed below from the row
    std::optional<BackupRecord> now = find_backup(spi, id, owner, true, false);
    return current_row(spi, now ? *now : *record, id, spi.caller_context());
}
