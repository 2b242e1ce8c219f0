#include "backup/export.hpp"

#include "backup/row_plan.hpp"
#include "pg/spi.hpp"
#include "backup/progress.hpp"
#include "backup/quota.hpp"
#include "backup/settings_scope.hpp"
#include "backup/storage.hpp"
#include "backup/store.hpp"
#include "core/backup_format.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "core/zstd_stream.hpp"
#include "pg/datum.hpp"
#include "pg/files.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"
#include "pg/settings.hpp"
#include "pg/sha256.hpp"

extern "C" {
#include "access/transam.h"
#include "mb/pg_wchar.h"
#include "nodes/params.h"
#include "tcop/dest.h"
#include "tcop/utility.h"
#include "utils/fmgroids.h"
}

#include <algorithm>
#include <charconv>
#include <cstring>
#include <exception>

namespace batchguard::backup {

namespace {

// A retention limit as people write it: "365 days", "12 hours", else seconds.
std::string describe_seconds(int seconds) {
    if (seconds % 86400 == 0) return std::to_string(seconds / 86400) + " days";
    if (seconds % 3600 == 0) return std::to_string(seconds / 3600) + " hours";
    return std::to_string(seconds) + " seconds";
}

namespace cfg = batchguard::settings;

pg::Statement prepare_sql{
    // now() + r is computed only for a retention within twice the maximum (months counted
    // as 30 days), so an enormous one gets our error instead of "timestamp out of range".
    "SELECT pg_catalog.gen_random_uuid()::pg_catalog.text,"
    "       pg_catalog.to_json(pg_catalog.now())#>>'{}',"
    "       CASE WHEN fits THEN pg_catalog.to_json(pg_catalog.now() + r)#>>'{}' END,"
    "       r > '0'::pg_catalog.interval,"
    "       CASE WHEN fits THEN pg_catalog.now() + r <= pg_catalog.now() +"
    "                           pg_catalog.make_interval(secs => $2) ELSE false END,"
    "       pg_catalog.now(), CASE WHEN fits THEN pg_catalog.now() + r END"
    "  FROM (SELECT r, r > '0'::pg_catalog.interval"
    "                  AND r <= pg_catalog.make_interval(secs => $2) * 2 AS fits"
    "          FROM (SELECT coalesce($1, pg_catalog.make_interval(secs => $3)) AS r) x) y",
    {INTERVALOID, FLOAT8OID, FLOAT8OID}};

pg::Statement retention_sql{
    "SELECT r > '0'::pg_catalog.interval,"
    "       CASE WHEN r > '0'::pg_catalog.interval"
    "                 AND r <= pg_catalog.make_interval(secs => $2) * 2"
    "            THEN pg_catalog.now() + r <= pg_catalog.now() + pg_catalog.make_interval(secs => "
    "$2)"
    "            ELSE false END"
    "  FROM (SELECT coalesce($1, pg_catalog.make_interval(secs => $3)) AS r) x",
    {INTERVALOID, FLOAT8OID, FLOAT8OID}};

void require_valid_retention(bool positive, bool within_maximum) {
    if (!positive) throw Error(sqlstate::kInvalidParameterValue, "retention must be positive");
    if (!within_maximum)
        throw Error(
            sqlstate::kInvalidParameterValue,
            "retention exceeds batchguard.max_backup_retention (" +
                describe_seconds(cfg::max_backup_retention_s) + ")",
            "The longest retention is " + std::to_string(cfg::max_backup_retention_s) + " seconds.",
            "Keep it longer with a legal hold (hold_backup), which has no limit.");
}

#define INSERT_COLUMNS                                                                            \
    "INSERT INTO batchguard.backups AS b (backup_id, owner, label, source_table, tables,"         \
    "       row_counts, total_rows, compressed_bytes, uncompressed_bytes, file_sha256,"           \
    "       body_sha256, created_at, expires_at, creating_xid, include_children, format_version," \
    "       delete_actions"
#define INSERT_VALUES                                                                           \
    " VALUES ($1::pg_catalog.uuid, $2, $3, $4, $5, $6::pg_catalog.jsonb, $7, $8, $9, $10, $11," \
    "         $12, $13, $14::pg_catalog.text::pg_catalog.xid8, $15, $16,"                       \
    "         $17::pg_catalog.jsonb"
#define INSERT_TYPES                                                                               \
    TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTOID, INT8OID, INT8OID, INT8OID, TEXTOID, \
        TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, BOOLOID, INT4OID, TEXTOID
pg::Statement insert_sql{INSERT_COLUMNS ", storage, file_folder, file_cluster)" INSERT_VALUES
                                        ", $18, $19, $20) RETURNING b",
                         {INSERT_TYPES, TEXTOID, TEXTOID, INT8OID}};
// A database still at 1.0: no storage columns (every backup is a file).
pg::Statement insert_sql_1_0{INSERT_COLUMNS ")" INSERT_VALUES ") RETURNING b", {INSERT_TYPES}};
#undef INSERT_COLUMNS
#undef INSERT_VALUES
#undef INSERT_TYPES

// Renders the rows of one query as lines: each value through its type's output function
// (never a cast another role could have created), as a JSON string, SQL NULL as null.
// A query's columns: ctid, the parent key's columns (0 or more), then the row's columns.
//
// The lines are rendered straight into one block of about kBlock bytes, which is hashed
// (the body's SHA-256) and handed to zstd as a whole: one digest update and no copy per
// line. flush() before anything else writes to the zstd stream.
//
// Columns whose output function is int2out, int4out, int8out or textout / varcharout /
// bpcharout are rendered here without calling it: their text is the decimal number, or
// the stored characters (up to a NUL, as text_to_cstring's C string ends there) — the
// same bytes the function returns, without its palloc, copy and strlen. Every other type
// goes through its output function.
class LineWriter {
  public:
    static constexpr std::size_t kBlock = 128 * 1024;

    LineWriter(ZstdWriter& zstd, Hasher& body_hash, ExportProgress& progress)
        : zstd_(zstd),
          body_hash_(body_hash),
          progress_(progress),
          convert_(GetDatabaseEncoding() != PG_UTF8 && GetDatabaseEncoding() != PG_SQL_ASCII) {
        row_memory_ = pg::pg_call([] {
            return AllocSetContextCreate(CurrentMemoryContext, "pg_batchguard export row",
                                         ALLOCSET_DEFAULT_SIZES);
        });
        block_.reserve(kBlock + 4096);
    }

    void line(std::string_view text) {
        block_ += text;
        if (block_.size() >= kBlock) flush();
    }

    // Hashes and compresses the lines rendered so far.
    void flush() {
        if (block_.empty()) return;
        body_hash_.update(block_.data(), block_.size());
        zstd_.write(block_);
        block_.clear();
        progress_.bytes_written = zstd_.bytes_out();
    }

    // Before a query: the table, the parent it was reached from, how many parent key
    // columns precede the row's, and the changed rows of the relation (nullptr: removed).
    void start(const std::string& table, const std::string* parent,
               const std::vector<BackupColumn>& columns, int key_columns,
               const PlanTable* changed_table, const RowPlan* plan) {
        format_.emplace(table, parent);
        names_.clear();
        for (std::size_t c = 0; c < columns.size(); ++c) {
            std::string n = c == 0 ? "{" : ",";
            append_json_string(n, columns[c].name);
            names_.push_back(n + ":");
        }
        key_columns_ = key_columns;
        changed_table_ = changed_table;
        plan_ = plan;
        kinds_.clear();
        rows_ = 0;
    }

    // Called for every row (inside the executor: see receive_slot).
    void row(TupleTableSlot* slot) {
        const int natts = slot->tts_tupleDescriptor->natts;
        if (kinds_.empty()) prepare(slot->tts_tupleDescriptor);
        ItemPointerData tid{};
        pg::pg_call([&] {
            MemoryContext old = MemoryContextSwitchTo(row_memory_);
            slot_getallattrs(slot);
            tid = *reinterpret_cast<ItemPointer>(DatumGetPointer(slot->tts_values[0]));
            for (int i = 1; i < natts; ++i) {
                const auto c = static_cast<std::size_t>(i);
                Value& v = values_[c];
                v.null = slot->tts_isnull[i];
                if (v.null) continue;
                const Datum d = slot->tts_values[i];
                switch (kinds_[c]) {
                    case Kind::kInt2:
                        v.number = DatumGetInt16(d);
                        break;
                    case Kind::kInt4:
                        v.number = DatumGetInt32(d);
                        break;
                    case Kind::kInt8:
                        v.number = DatumGetInt64(d);
                        break;
                    case Kind::kText: {
                        const varlena* t =
                            pg_detoast_datum_packed(reinterpret_cast<varlena*>(DatumGetPointer(d)));
                        const char* data = VARDATA_ANY(t);
                        const std::size_t size = VARSIZE_ANY_EXHDR(t);
                        const void* nul = std::memchr(data, '\0', size);
                        v.text = std::string_view(
                            data,
                            nul ? static_cast<std::size_t>(static_cast<const char*>(nul) - data)
                                : size);
                        break;
                    }
                    case Kind::kOutput:
                        v.text = OutputFunctionCall(&functions_[c], d);
                        break;
                }
            }
            MemoryContextSwitchTo(old);
        });
        const std::size_t line_start = block_.size();
        format_->begin(block_);
        const std::size_t first = 1 + static_cast<std::size_t>(key_columns_);
        for (std::size_t c = 0; c < names_.size(); ++c) {
            block_ += names_[c];
            if (values_[first + c].null)
                block_ += "null";
            else
                append_value(block_, first + c);
        }
        if (names_.empty()) block_.push_back('{');
        block_.push_back('}');
        const std::string* changed = nullptr;
        if (changed_table_ != nullptr) {
            changed_.clear();
            const int r = changed_table_->changed.find(relation_, tid);
            if (r < 0) throw Error(sqlstate::kInternalError, "a changed row is not in the plan");
            std::vector<std::string> columns;
            for (int e : changed_table_->changed_by[static_cast<std::size_t>(r)])
                for (const std::string& c : plan_->edges()[static_cast<std::size_t>(e)].changed)
                    if (std::find(columns.begin(), columns.end(), c) == columns.end())
                        columns.push_back(c);
            changed_.push_back('[');
            for (std::size_t i = 0; i < columns.size(); ++i) {
                if (i > 0) changed_.push_back(',');
                append_json_string(changed_, columns[i]);
            }
            changed_.push_back(']');
            changed = &changed_;
        }
        if (key_columns_ == 0 || !format_->has_parent()) {
            format_->end_without_parent(block_, changed);
        } else {
            format_->end_with_parent_key_start(block_);
            if (key_columns_ == 1) {  // the key value's text (a NULL as "")
                if (values_[1].null)
                    block_ += "\"\"";
                else
                    append_value(block_, 1);
            } else {  // a JSON array of the key values' text, as a JSON string
                key_.assign(1, '[');
                for (std::size_t k = 1; k <= static_cast<std::size_t>(key_columns_); ++k) {
                    if (k > 1) key_.push_back(',');
                    if (values_[k].null)
                        key_ += "null";
                    else
                        append_value(key_, k);
                }
                key_.push_back(']');
                append_json_string(block_, key_);
            }
            format_->end_after_parent_key(block_, changed);
        }
        pg::pg_call([&] { MemoryContextReset(row_memory_); });
        if (convert_) {
            const char* start = block_.data() + line_start;
            const char* converted = pg::pg_call([&] {
                return pg_server_to_any(start, static_cast<int>(block_.size() - line_start),
                                        PG_UTF8);
            });
            if (converted != start) {
                // Appended outside pg_call, whose body must not throw (a longer line may
                // reallocate); on bad_alloc the palloc'd copy goes with the transaction.
                block_.resize(line_start);
                block_ += converted;
                pg::pg_call([&] { pfree(const_cast<char*>(converted)); });
            }
        }
        if (block_.size() >= kBlock) flush();
        ++rows_;
        progress_.rows += 1;
        if ((rows_ & 0x3FF) == 0) progress_.publish();
    }

    void set_relation(Oid relation) { relation_ = relation; }
    std::int64_t rows() const { return rows_; }

    std::exception_ptr error;

  private:
    enum class Kind { kOutput, kInt2, kInt4, kInt8, kText };
    struct Value {
        bool null = true;
        std::int64_t number = 0;  // kInt2, kInt4, kInt8
        std::string_view text;    // kText, kOutput
    };

    // The first row of a query: how each column of its descriptor is rendered.
    void prepare(TupleDesc desc) {
        const auto natts = static_cast<std::size_t>(desc->natts);
        kinds_.assign(natts, Kind::kOutput);
        functions_.assign(natts, FmgrInfo{});
        values_.assign(natts, Value{});
        pg::pg_call([&] {
            for (int i = 1; i < desc->natts; ++i) {
                const auto c = static_cast<std::size_t>(i);
                Oid output = InvalidOid;
                bool varlena = false;
                getTypeOutputInfo(TupleDescAttr(desc, i)->atttypid, &output, &varlena);
                switch (output) {
                    case F_INT2OUT:
                        kinds_[c] = Kind::kInt2;
                        break;
                    case F_INT4OUT:
                        kinds_[c] = Kind::kInt4;
                        break;
                    case F_INT8OUT:
                        kinds_[c] = Kind::kInt8;
                        break;
                    case F_TEXTOUT:
                    case F_VARCHAROUT:
                    case F_BPCHAROUT:
                        kinds_[c] = Kind::kText;
                        break;
                    default:
                        fmgr_info_cxt(output, &functions_[c], row_memory_->parent);
                }
            }
        });
    }

    // A non-null value as a JSON string of its text.
    void append_value(std::string& out, std::size_t c) {
        const Value& v = values_[c];
        switch (kinds_[c]) {
            case Kind::kInt2:
            case Kind::kInt4:
            case Kind::kInt8: {
                char digits[24];
                const auto end = std::to_chars(digits, digits + sizeof digits, v.number).ptr;
                out.push_back('"');
                out.append(digits, end);
                out.push_back('"');
                break;
            }
            case Kind::kText:
            case Kind::kOutput:
                append_json_string(out, v.text);
                break;
        }
    }

    ZstdWriter& zstd_;
    Hasher& body_hash_;
    ExportProgress& progress_;
    bool convert_;
    MemoryContext row_memory_ = nullptr;
    std::optional<RowLineFormat> format_;
    std::vector<std::string> names_;  // each column's {"name": or ,"name":
    std::vector<Kind> kinds_;
    std::vector<FmgrInfo> functions_;
    std::vector<Value> values_;
    int key_columns_ = 0;
    const PlanTable* changed_table_ = nullptr;
    const RowPlan* plan_ = nullptr;
    Oid relation_ = InvalidOid;
    std::string block_, key_, changed_;
    std::int64_t rows_ = 0;
};

struct Receiver {
    DestReceiver pub;  // first: PostgreSQL sees a DestReceiver*
    LineWriter* writer;
};

// Runs inside the executor (PostgreSQL frames above and below): no C++ exception may leave
// it. A PostgreSQL error is re-raised as is; a C++ error is kept and re-thrown once the
// executor has unwound (see run_query).
bool receive_slot(TupleTableSlot* slot, DestReceiver* self) {
    auto* receiver = reinterpret_cast<Receiver*>(self);
    ErrorData* pg_error = nullptr;
    bool failed = false;
    try {
        receiver->writer->row(slot);
    } catch (const pg::PgError& e) {
        pg_error = e.data();
    } catch (...) {
        receiver->writer->error = std::current_exception();
        failed = true;
    }
    if (pg_error != nullptr) ReThrowError(pg_error);
    if (failed) ereport(ERROR, (errmsg("pg_batchguard: export interrupted")));
    return true;
}

void receiver_startup(DestReceiver*, int, TupleDesc) {}
void receiver_shutdown(DestReceiver*) {}
void receiver_destroy(DestReceiver*) {}

void run_query(const std::string& sql, const std::vector<Oid>& types,
               const std::vector<Datum>& values, LineWriter& writer) {
    Receiver receiver{};
    receiver.pub.receiveSlot = receive_slot;
    receiver.pub.rStartup = receiver_startup;
    receiver.pub.rShutdown = receiver_shutdown;
    receiver.pub.rDestroy = receiver_destroy;
    receiver.pub.mydest = DestNone;
    receiver.writer = &writer;
    writer.error = nullptr;
    try {
        const pg::PinnedPlan plan(sql, types);
        pg::pg_call([&] {
            ParamListInfo params = nullptr;
            if (!types.empty()) {
                params = makeParamList(static_cast<int>(types.size()));
                for (std::size_t i = 0; i < types.size(); ++i) {
                    params->params[i].value = values[i];
                    params->params[i].isnull = false;
                    params->params[i].pflags = PARAM_FLAG_CONST;
                    params->params[i].ptype = types[i];
                }
            }
            SPIExecuteOptions options{};
            options.params = params;
            options.read_only = true;
            options.dest = &receiver.pub;
            const int rc = SPI_execute_plan_extended(plan.get(), &options);
            if (rc < 0)
                elog(ERROR, "SPI_execute_plan_extended failed: %s", SPI_result_code_string(rc));
        });
    } catch (const pg::PgError&) {
        if (writer.error) std::rethrow_exception(writer.error);
        throw;
    }
}

std::string quote_name(const std::string& identifier) {
    const char* quoted = pg::pg_call([&] { return quote_identifier(identifier.c_str()); });
    return quoted;
}

// Ends a backup's file: its trailer (each table's rows, the body's digest) written and the
// file made durable. Returns the trailer, and the counts and table names as the backups
// row stores them.
struct FinishedFile {
    BackupTrailer trailer;
    std::string counts_json;
    Datum tables_array;
};
FinishedFile finish_file(const ExportResult& result, const std::vector<std::string>& table_names,
                         Hasher& body_hash, ZstdWriter& zstd, BackupSink& file,
                         ExportProgress& progress) {
    progress.set_phase(ExportPhase::kFinishing);
    FinishedFile finished{{result.row_counts, result.total_rows, body_hash.finish_hex()}, "{", {}};
    zstd.write(trailer_line(finished.trailer) + "\n");
    zstd.finish();
    file.make_durable();
    for (std::size_t i = 0; i < result.row_counts.size(); ++i) {
        if (i > 0) finished.counts_json += ",";
        append_json_string(finished.counts_json, result.row_counts[i].first);
        finished.counts_json += ":" + std::to_string(result.row_counts[i].second);
    }
    finished.counts_json += "}";
    std::vector<std::string_view> names(table_names.begin(), table_names.end());
    finished.tables_array = pg::make_text_array(names);
    return finished;
}

// The backup's row in batchguard.backups, returned for the caller. with_storage: the table
// has the storage columns (1.1); a 1.0 table has none (its backups are files).
Datum insert_backup_row(pg::SpiSession& spi, const BackupHeader& header, const ExportResult& result,
                        const FinishedFile& finished, BackupSink& file, const ZstdWriter& zstd,
                        TimestampTz created_at, TimestampTz expires_at, std::uint64_t xid,
                        const std::optional<std::string>& delete_actions, const NewBackup& where,
                        bool with_storage) {
    const bool file_storage = where.storage == Storage::kFile;
    std::vector<pg::Arg> args{pg::Arg::text(header.backup_id),
                              pg::Arg::text(header.owner),
                              header.label ? pg::Arg::text(*header.label) : pg::Arg::null(),
                              pg::Arg::text(header.source),
                              pg::Arg::of(finished.tables_array),
                              pg::Arg::text(finished.counts_json),
                              pg::Arg::int8(result.total_rows),
                              pg::Arg::int8(static_cast<std::int64_t>(file.size())),
                              pg::Arg::int8(static_cast<std::int64_t>(zstd.bytes_in())),
                              pg::Arg::text(file.sha256_hex()),
                              pg::Arg::text(finished.trailer.body_sha256),
                              pg::Arg::of(TimestampTzGetDatum(created_at)),
                              pg::Arg::of(TimestampTzGetDatum(expires_at)),
                              pg::Arg::text(std::to_string(xid)),
                              pg::Arg::boolean(header.include_children),
                              pg::Arg::int4(kBackupFormatVersion),
                              delete_actions ? pg::Arg::text(*delete_actions) : pg::Arg::null()};
    if (with_storage) {
        args.push_back(pg::Arg::text(storage_name(where.storage)));
        args.push_back(file_storage ? pg::Arg::text(where.folder) : pg::Arg::null());
        args.push_back(file_storage ? pg::Arg::int8(static_cast<std::int64_t>(where.cluster))
                                    : pg::Arg::null());
    }
    pg::Rows rows = spi.execute(with_storage ? insert_sql : insert_sql_1_0, args);
    return rows.datum_for_caller(0, 1).value();
}

}  // namespace

ExportResult export_backup(const ExportRequest& request, const RowPlan* given_plan) {
    pg::pg_call([] { PreventCommandIfReadOnly("export_backup()"); });
    const std::string owner = pg::current_owner();
    PinnedOutputSettings pinned;  // also makes the timestamps below UTC

    BackupHeader header;
    TimestampTz created_at = 0, expires_at = 0;
    {
        pg::SpiSession spi;
        pg::Rows r = spi.execute(
            prepare_sql, {request.retention ? pg::Arg::of(*request.retention) : pg::Arg::null(),
                          pg::Arg::of(Float8GetDatum(cfg::max_backup_retention_s)),
                          pg::Arg::of(Float8GetDatum(cfg::backup_retention_s))});
        require_valid_retention(r.boolean(0, 4).value(), r.boolean(0, 5).value());
        header.backup_id = r.text(0, 1).value();
        header.created_at = r.text(0, 2).value();
        header.expires_at = r.text(0, 3).value();
        created_at = DatumGetTimestampTz(r.datum(0, 6).value());
        expires_at = DatumGetTimestampTz(r.datum(0, 7).value());
    }
    Quota quota(owner);
    quota.check(1);  // already full: fail before writing anything

    header.owner = owner;
    header.label = request.label;
    header.include_children = request.include_children;
    header.settings = PinnedOutputSettings::values();
    header.server_version =
        pg::pg_call([] { return GetConfigOption("server_version", false, false); });
    header.encoding = "UTF8";

    const std::uint64_t xid =
        U64FromFullTransactionId(pg::pg_call([] { return GetTopFullTransactionId(); }));
    // Until it commits there is no backup to name: errors name what is being exported.
    pg::set_error_context("pg_batchguard export");
    NewBackup where;
    {
        pg::SpiSession spi;
        where = choose_storage(spi);
    }

    ExportProgress progress(header.backup_id, owner);
    std::unique_ptr<BackupSink> sink = create_backup_sink(where, header.backup_id, xid);
    BackupSink& file = *sink;
    file.on_write = [&](std::uint64_t size) {
        quota.check(static_cast<std::int64_t>(size));
        progress.bytes_written = size;
        progress.publish();
        pg::check_for_interrupts();
    };
    std::unique_ptr<Hasher> body_hash = pg::make_sha256();
    ZstdWriter zstd(file, {cfg::compression_level, cfg::compression_workers});
    LineWriter writer(zstd, *body_hash, progress);

    ExportResult result;
    result.backup_id = header.backup_id;
    std::vector<std::string> table_names;
    std::string actions_json;  // for_delete: {"table": {"action": ..., "columns": [...]}}
    {
        pg::SpiSession spi(pg::SpiSession::Access::kReadOnly, pg::SpiSession::Identity::kAsCaller,
                           pg::SpiSession::SearchPath::kCallers);
        progress.set_phase(ExportPhase::kPlanning);
        std::optional<RowPlan> own_plan;
        if (given_plan == nullptr)
            own_plan.emplace(RowPlan::build(spi, request.source, request.ids,
                                            request.include_children, PlanMode::kExport));
        const RowPlan& plan = given_plan ? *given_plan : *own_plan;
        header.tables = plan.header_tables();
        header.source = header.tables.front().name;
        pg::set_error_context("pg_batchguard export of table " + header.source);
        writer.line(header_line(header) + "\n");
        progress.set_phase(ExportPhase::kWriting);
        std::vector<std::int64_t> counts(plan.tables().size(), 0);
        if (plan.streamed()) {  // one table, nothing collected: its rows as they come
            const PlanTable& table = plan.tables().front();
            std::string columns;
            for (const BackupColumn& c : table.columns) columns += ", bg_row." + quote_name(c.name);
            for (Oid leaf : table.leaves) {
                writer.start(table.name, nullptr, table.columns, 0, nullptr, &plan);
                writer.set_relation(leaf);
                run_query(
                    "SELECT bg_row.ctid" + columns + " FROM ONLY " + table.leaf_names.at(leaf) +
                        " bg_row WHERE " + plan.source_condition(),
                    request.ids ? std::vector<Oid>{TEXTARRAYOID} : std::vector<Oid>{},
                    request.ids ? std::vector<Datum>{*request.ids} : std::vector<Datum>{}, writer);
                counts[0] += writer.rows();
            }
        }
        // One query per relation, edge and kind (removed / changed): the rows by ctid.
        for (std::size_t t = 0; t < plan.tables().size(); ++t) {
            const PlanTable& table = plan.tables()[t];
            std::string columns;
            for (const BackupColumn& c : table.columns) columns += ", bg_row." + quote_name(c.name);
            if (table.streamed) {  // its rows as they come, through its one foreign key
                const int via = table.in_edges.front();
                const PlanEdge& edge = plan.edges()[static_cast<std::size_t>(via)];
                std::optional<RowPlan::EdgeQuery> q = plan.edge_query(via);
                if (!q) continue;
                std::string keys;
                for (const std::string& c : edge.columns) keys += ", bg_row." + c;
                pg::check_for_interrupts();
                writer.start(table.name, &plan.tables()[static_cast<std::size_t>(edge.parent)].name,
                             table.columns, static_cast<int>(edge.columns.size()), nullptr, &plan);
                run_query("SELECT bg_row.ctid" + keys + columns + q->from, q->types, q->values,
                          writer);
                counts[t] += writer.rows();
                continue;
            }
            for (int kind = 0; kind < 2; ++kind) {
                const RowSet& set = kind == 0 ? table.deleted : table.changed;
                if (set.size() == 0) continue;
                std::vector<int> vias{-1};
                for (int e : table.in_edges) vias.push_back(e);
                for (Oid leaf : table.leaves) {
                    for (int via : vias) {
                        bool any = false;
                        for (const RowSet::Row& r : set.rows)
                            any = any || (r.relation == leaf && r.via == via);
                        if (!any) continue;
                        pg::check_for_interrupts();
                        std::string keys;
                        int key_columns = 0;
                        const std::string* parent = nullptr;
                        if (via >= 0) {
                            const PlanEdge& edge = plan.edges()[static_cast<std::size_t>(via)];
                            for (const std::string& c : edge.columns) keys += ", bg_row." + c;
                            key_columns = static_cast<int>(edge.columns.size());
                            parent = &plan.tables()[static_cast<std::size_t>(edge.parent)].name;
                        }
                        const std::string sql =
                            "SELECT bg_row.ctid" + keys + columns + " FROM ONLY " +
                            table.leaf_names.at(leaf) +
                            " bg_row WHERE bg_row.ctid OPERATOR(pg_catalog.=) ANY ($1)";
                        writer.start(table.name, parent, table.columns, key_columns,
                                     kind == 1 ? &table : nullptr, &plan);
                        writer.set_relation(leaf);
                        run_query(sql, {TIDARRAYOID}, {RowPlan::tid_array(set, leaf, via, false)},
                                  writer);
                        counts[t] += writer.rows();
                    }
                }
            }
        }
        for (std::size_t i = 0; i < counts.size(); ++i) {
            result.row_counts.emplace_back(plan.tables()[i].name, counts[i]);
            result.total_rows += counts[i];
            table_names.push_back(plan.tables()[i].name);
        }
        if (request.for_delete) {
            actions_json = "{";
            for (std::size_t i = 0; i < plan.tables().size(); ++i) {
                const PlanTable& t = plan.tables()[i];
                std::string action = "delete";
                std::vector<std::string> changed_columns;
                for (int e : t.in_edges) {
                    const PlanEdge& edge = plan.edges()[static_cast<std::size_t>(e)];
                    for (const auto& c : edge.changed)
                        if (std::find(changed_columns.begin(), changed_columns.end(), c) ==
                            changed_columns.end())
                            changed_columns.push_back(c);
                    if (t.deleted.size() == 0 && t.changed.size() > 0 && !edge.changed.empty())
                        action = edge.action == 'n' ? "set null" : "set default";
                }
                if (t.deleted.size() > 0 && t.changed.size() > 0) action = "delete and change";
                result.actions.push_back(action);
                result.changed.push_back(static_cast<std::int64_t>(t.changed.size()));
                if (i > 0) actions_json += ",";
                append_json_string(actions_json, t.name);
                actions_json += ":{\"action\":";
                append_json_string(actions_json, action);
                actions_json += ",\"columns\":[";
                for (std::size_t c = 0; c < changed_columns.size(); ++c) {
                    if (c > 0) actions_json += ",";
                    append_json_string(actions_json, changed_columns[c]);
                }
                actions_json += "]}";
            }
            actions_json += "}";
        }
    }

    if (result.total_rows == 0) {
        if (!cfg::allow_empty_backups)
            throw Error(sqlstate::kInvalidParameterValue, "no rows to back up",
                        "The ids select no row of table " + header.source + " that you can read.",
                        "Check the ids, or set batchguard.allow_empty_backups = on to accept an "
                        "empty backup.");
        pg::pg_call([&] {
            ereport(NOTICE, (errmsg("backup of table %s holds no rows", header.source.c_str()),
                             errdetail("Backup %s is empty: the ids select no row that you can "
                                       "read.",
                                       header.backup_id.c_str()),
                             errhint("Set batchguard.allow_empty_backups = off to make this an "
                                     "error.")));
        });
    }
    writer.flush();  // its last lines, before the trailer
    const FinishedFile finished =
        finish_file(result, table_names, *body_hash, zstd, file, progress);
    pg::register_owner_role(GetUserId());
    {
        pg::SpiSession spi;
        result.row = insert_backup_row(
            spi, header, result, finished, file, zstd, created_at, expires_at, xid,
            request.for_delete ? std::optional<std::string>(actions_json) : std::nullopt, where,
            storage_columns_installed());
        BackupRecord record;
        record.backup_id = header.backup_id;
        record.owner = owner;
        audit(
            spi, record, owner, "export",
            "{\"source\":" +
                [&] {
                    std::string s;
                    append_json_string(s, header.source);
                    return s;
                }() +
                ",\"rows\":" + std::to_string(result.total_rows) +
                ",\"bytes\":" + std::to_string(file.size()) + "}");
    }
    return result;
}

void validate_retention(std::optional<Datum> retention) {
    pg::SpiSession spi;
    pg::Rows r =
        spi.execute(retention_sql, {retention ? pg::Arg::of(*retention) : pg::Arg::null(),
                                    pg::Arg::of(Float8GetDatum(cfg::max_backup_retention_s)),
                                    pg::Arg::of(Float8GetDatum(cfg::backup_retention_s))});
    require_valid_retention(r.boolean(0, 1).value(), r.boolean(0, 2).value());
}

ExportResult write_collected_backup(const CollectedBackup& backup) {
    PinnedOutputSettings pinned;  // the header's timestamps in UTC
    BackupHeader header;
    TimestampTz created_at = 0, expires_at = 0;
    {
        pg::SpiSession spi;
        pg::Rows r = spi.execute(
            prepare_sql, {backup.retention ? pg::Arg::of(*backup.retention) : pg::Arg::null(),
                          pg::Arg::of(Float8GetDatum(cfg::max_backup_retention_s)),
                          pg::Arg::of(Float8GetDatum(cfg::backup_retention_s))});
        if (!r.boolean(0, 4).value())
            throw Error(sqlstate::kInvalidParameterValue, "retention must be positive");
        if (!r.boolean(0, 5).value())
            throw Error(sqlstate::kInvalidParameterValue,
                        "retention exceeds batchguard.max_backup_retention (" +
                            describe_seconds(cfg::max_backup_retention_s) + ")",
                        "The longest retention is " + std::to_string(cfg::max_backup_retention_s) +
                            " seconds.",
                        "Shorten the retention of the protected table (protect_table).");
        header.created_at = r.text(0, 2).value();
        header.expires_at = r.text(0, 3).value();
        created_at = DatumGetTimestampTz(r.datum(0, 6).value());
        expires_at = DatumGetTimestampTz(r.datum(0, 7).value());
    }
    header.backup_id = backup.backup_id;
    header.owner = backup.owner;
    header.include_children = true;
    header.settings = PinnedOutputSettings::values();
    header.server_version =
        pg::pg_call([] { return GetConfigOption("server_version", false, false); });
    header.encoding = "UTF8";
    header.tables = backup.tables;
    header.source = header.tables.front().name;
    pg::set_error_context("pg_batchguard backup of the rows deleted from protected table " +
                          header.source);
    Quota quota(backup.owner);
    quota.check(1);

    const std::uint64_t xid =
        U64FromFullTransactionId(pg::pg_call([] { return GetTopFullTransactionId(); }));
    // A small one stays in the database even with file storage (a default NewBackup).
    NewBackup where;
    const bool small = backup.bytes < std::uint64_t(cfg::small_backup_in_database_kb) * 1024;
    if (cfg::backup_storage != cfg::kStorageFile || !small) {
        pg::SpiSession spi;
        where = choose_storage(spi);
    }
    ExportProgress progress(header.backup_id, backup.owner);
    std::unique_ptr<BackupSink> sink = create_backup_sink(where, header.backup_id, xid);
    BackupSink& file = *sink;
    file.on_write = [&](std::uint64_t size) {
        quota.check(static_cast<std::int64_t>(size));
        progress.bytes_written = size;
        progress.publish();
        pg::check_for_interrupts();
    };
    std::unique_ptr<Hasher> body_hash = pg::make_sha256();
    // zstd's worker threads are started per backup: not worth it for a small one.
    const int workers = backup.bytes < (std::uint64_t{4} << 20) ? 0 : cfg::compression_workers;
    ZstdWriter zstd(file, {cfg::compression_level, workers});
    const auto line = [&](std::string_view text) {
        body_hash->update(text.data(), text.size());
        zstd.write(text);
    };
    line(header_line(header) + "\n");
    progress.set_phase(ExportPhase::kWriting);
    backup.write_rows(line);

    ExportResult result;
    result.backup_id = header.backup_id;
    std::vector<std::string> table_names;
    for (std::size_t i = 0; i < backup.tables.size(); ++i) {
        result.row_counts.emplace_back(backup.tables[i].name, backup.counts[i]);
        result.total_rows += backup.counts[i];
        table_names.push_back(backup.tables[i].name);
    }
    const FinishedFile finished =
        finish_file(result, table_names, *body_hash, zstd, file, progress);
    pg::register_owner_role(backup.owner_role);
    {
        pg::SpiSession spi;
        // Protection exists from 1.1 on: the storage columns are there.
        result.row = insert_backup_row(spi, header, result, finished, file, zstd, created_at,
                                       expires_at, xid, backup.delete_actions, where, true);
        BackupRecord record;
        record.backup_id = header.backup_id;
        record.owner = backup.owner;
        audit(spi, record, backup.owner, "protected delete", backup.audit_detail);
    }
    return result;
}

}  // namespace batchguard::backup
