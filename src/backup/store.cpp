#include "backup/store.hpp"

#include "core/error.hpp"
#include "backup/folders.hpp"
#include "pg/files.hpp"
#include "pg/guard.hpp"
#include "pg/instance.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/xlog.h"
#include "utils/typcache.h"
#include "utils/uuid.h"
}

namespace batchguard::backup {

namespace {

#define FIND_SQL(TAIL)                                                                         \
    "SELECT b.owner, b.file_sha256, b.creating_xid::pg_catalog.text::pg_catalog.int8,"         \
    "       b.compressed_bytes, b.legal_hold,"                                                 \
    "       b.expires_at < pg_catalog.now() AND NOT b.legal_hold, b.created_at, b.expires_at," \
    "       " TAIL "  FROM batchguard.backups b WHERE b.backup_id = $1"
pg::Statement find_sql{FIND_SQL("b.legal_hold_by, b.storage, b.file_folder, b.file_cluster"),
                       {UUIDOID}};
// A database still at 1.0: no legal_hold_by, and every backup is a file of this cluster, in
// <directory>/<oid>/.
pg::Statement find_sql_1_0{FIND_SQL("NULL::pg_catalog.text"), {UUIDOID}};
#undef FIND_SQL

// The owner is checked in the statement that locks: another owner's backup is never
// locked (nor waited for), so its id behaves exactly like an unknown one.
pg::Statement lock_sql{
    "SELECT 1 FROM batchguard.backups"
    " WHERE backup_id = $1 AND (owner = $2 OR $3) FOR UPDATE",
    {UUIDOID, TEXTOID, BOOLOID}};

pg::Statement audit_sql{
    "INSERT INTO batchguard.audit (backup_id, owner, actor, action, detail)"
    " VALUES ($1::pg_catalog.uuid, $2, $3, $4, $5::pg_catalog.jsonb)",
    {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID}};

}  // namespace

std::string BackupRecord::file_name() const {
    return backup_id + "-" + std::to_string(creating_xid) + ".jsonl.zst";
}

std::string BackupRecord::path() const { return folder_path(file_folder) + "/" + file_name(); }

std::string uuid_text(Datum uuid) {
    const char* text =
        pg::pg_call([&] { return DatumGetCString(DirectFunctionCall1(uuid_out, uuid)); });
    return text;
}

std::optional<BackupRecord> find_backup(pg::SpiSession& spi, Datum backup_id,
                                        std::string_view owner, bool admin_too, bool for_update) {
    if (for_update && spi.execute(lock_sql, {pg::Arg::of(backup_id), pg::Arg::text(owner),
                                             pg::Arg::boolean(admin_too)})
                          .empty())
        return std::nullopt;
    // legal_hold_by and the storage columns came together, with 1.1.
    const bool with_storage = storage_columns_installed();
    pg::Rows rows = spi.execute(with_storage ? find_sql : find_sql_1_0, {pg::Arg::of(backup_id)});
    if (rows.empty()) return std::nullopt;
    BackupRecord r;
    r.owner = rows.text(0, 1).value();
    if (r.owner != owner && !admin_too) return std::nullopt;
    r.backup_id = uuid_text(backup_id);
    r.file_sha256 = rows.text(0, 2).value();
    r.creating_xid = static_cast<std::uint64_t>(rows.int8(0, 3).value());
    r.compressed_bytes = rows.int8(0, 4).value();
    r.legal_hold = rows.boolean(0, 5).value();
    r.expired = rows.boolean(0, 6).value();
    r.created_at = DatumGetTimestampTz(rows.datum(0, 7).value());
    r.expires_at = DatumGetTimestampTz(rows.datum(0, 8).value());
    r.legal_hold_by = rows.text(0, 9);
    if (with_storage) {
        r.storage = rows.text(0, 10).value() == "database" ? Storage::kDatabase : Storage::kFile;
        r.file_folder = rows.text(0, 11).value_or("");
        r.file_cluster = static_cast<std::uint64_t>(rows.int8(0, 12).value_or(0));
    } else {
        r.file_folder = std::to_string(MyDatabaseId);
        r.file_cluster = pg::system_identifier();
    }
    return r;
}

void unknown_backup(Datum backup_id) {
    throw Error(sqlstate::kUndefinedObject, "backup " + uuid_text(backup_id) + " does not exist",
                {}, "Backups are visible to their owner only.");
}

void expired_backup(const BackupRecord& record) {
    throw Error(sqlstate::kBackupExpired, "backup " + record.backup_id + " has expired",
                "It is past its expiry and is removed by the next cleanup.",
                "Until the cleanup removes it, extend_backup() or hold_backup() make it readable "
                "again.");
}

void require_readable(const BackupRecord& record, pg::SpiSession& spi) {
    require_available(record, spi);
}

void sha256_mismatch(const BackupRecord& record, const std::string& actual) {
    throw Error(
        sqlstate::kBackupCorrupt,
        "backup " + record.backup_id + " is corrupt: its SHA-256 does not match",
        "The file's SHA-256 is " + actual + "; the backup recorded " + record.file_sha256 + ".");
}

void audit(pg::SpiSession& spi, const BackupRecord& record, std::string_view actor,
           std::string_view action, std::string_view detail_json) {
    // A standby cannot write: its downloads and dry runs are in its server log only.
    const bool standby = pg::pg_call([] { return RecoveryInProgress(); });
    if (!standby)
        spi.execute(audit_sql,
                    {pg::Arg::text(record.backup_id), pg::Arg::text(record.owner),
                     pg::Arg::text(actor), pg::Arg::text(action), pg::Arg::text(detail_json)});
    const std::string message =
        "pg_batchguard: " + std::string(action) + " of backup " + record.backup_id + " (owner " +
        record.owner + ") by " + std::string(actor) + ": " + std::string(detail_json) +
        (standby ? " (on a standby: not recorded in batchguard.audit)" : "");
    pg::pg_call([&] { ereport(LOG, (errmsg("%s", message.c_str()))); });
}

const char* live_status(const BackupRecord& record, pg::SpiSession& spi) {
    const Availability availability = check_availability(record, spi).availability;
    if (availability != Availability::kOk) return availability_status(availability);
    if (record.expired) return "expired";
    return "ok";
}

Datum with_status(Datum row, const char* status, MemoryContext target) {
    return pg::pg_call([&] {
        HeapTupleHeader header = DatumGetHeapTupleHeader(row);
        TupleDesc desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(header),
                                                HeapTupleHeaderGetTypMod(header));
        HeapTupleData tuple;
        tuple.t_len = HeapTupleHeaderGetDatumLength(header);
        ItemPointerSetInvalid(&tuple.t_self);
        tuple.t_tableOid = InvalidOid;
        tuple.t_data = header;
        int column = 0;
        for (int i = 0; i < desc->natts; ++i)
            if (strcmp(NameStr(TupleDescAttr(desc, i)->attname), "status") == 0) column = i + 1;
        Datum value = CStringGetTextDatum(status);
        bool is_null = false;
        // (an error in between leaves the context as pg_call found it)
        MemoryContext old = MemoryContextSwitchTo(target);
        HeapTuple changed = heap_modify_tuple_by_cols(&tuple, desc, 1, &column, &value, &is_null);
        MemoryContextSwitchTo(old);
        Datum result = HeapTupleGetDatum(changed);
        ReleaseTupleDesc(desc);
        return result;
    });
}

}  // namespace batchguard::backup
