#include "backup/copy_restore.hpp"

#include "backup/settings_scope.hpp"
#include "backup/storage.hpp"
#include "backup/store.hpp"
#include "core/backup_format.hpp"
#include "core/error.hpp"
#include "core/zstd_stream.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"
#include "pg/sha256.hpp"

extern "C" {
#include "access/table.h"
#include "commands/copy.h"
#include "catalog/pg_trigger.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "nodes/value.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
}

#include <cstring>
#include <memory>
#include <optional>

namespace batchguard::backup {

namespace {

pg::Statement refusal{
    "SELECT CASE"
    "  WHEN c.relkind OPERATOR(pg_catalog.<>) 'r' THEN 'it is partitioned'"
    "  WHEN c.relispartition THEN 'it is a partition'"
    "  WHEN EXISTS (SELECT FROM pg_catalog.pg_trigger g"
    "                WHERE g.tgrelid OPERATOR(pg_catalog.=) c.oid AND NOT g.tgisinternal"
    "                  AND (g.tgtype::pg_catalog.int4 OPERATOR(pg_catalog.&) 4)"
    "                      OPERATOR(pg_catalog.<>) 0)"
    "    THEN 'it has INSERT triggers'"
    "  WHEN EXISTS (SELECT FROM pg_catalog.pg_rewrite w"
    "                WHERE w.ev_class OPERATOR(pg_catalog.=) c.oid) THEN 'it has rules'"
    "  WHEN EXISTS (SELECT FROM pg_catalog.pg_constraint k"
    "                WHERE k.conrelid OPERATOR(pg_catalog.=) c.oid"
    "                  AND k.contype OPERATOR(pg_catalog.=) 'c') THEN 'it has CHECK constraints'"
    "  WHEN EXISTS (SELECT FROM pg_catalog.pg_attribute a"
    "                 JOIN pg_catalog.pg_type y ON y.oid OPERATOR(pg_catalog.=) a.atttypid"
    "                 LEFT JOIN pg_catalog.pg_type e ON e.oid OPERATOR(pg_catalog.=) y.typelem"
    "                      AND y.typsubscript OPERATOR(pg_catalog.=)"
    "                          'pg_catalog.array_subscript_handler'::pg_catalog.regproc"
    "                WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum > 0"
    "                  AND NOT a.attisdropped"
    "                  AND (y.typtype NOT IN ('b', 'e') OR e.typtype NOT IN ('b', 'e')))"
    "    THEN 'it has a column of a domain, composite or range type'"
    "  WHEN EXISTS (SELECT FROM pg_catalog.pg_constraint k"
    "                CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(k.conkey),"
    "                                              pg_catalog.unnest(k.confkey)) AS u(a, b)"
    "                JOIN pg_catalog.pg_attribute x ON x.attrelid OPERATOR(pg_catalog.=)"
    "                     k.conrelid AND x.attnum OPERATOR(pg_catalog.=) u.a"
    "                JOIN pg_catalog.pg_attribute y ON y.attrelid OPERATOR(pg_catalog.=)"
    "                     k.confrelid AND y.attnum OPERATOR(pg_catalog.=) u.b"
    "               WHERE k.conrelid OPERATOR(pg_catalog.=) c.oid"
    "                 AND k.contype OPERATOR(pg_catalog.=) 'f'"
    "                 AND x.atttypid OPERATOR(pg_catalog.<>) y.atttypid)"
    "    THEN 'a foreign key of it compares columns of different types'"
    "  ELSE '' END"
    "  FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) $1",
    {OIDOID}};

// What COPY would run besides the input functions, as the relation cache knows it now
// (the lock is held): the same refusals, seen without a snapshot. (Triggers on DELETE,
// UPDATE or TRUNCATE -- protect_table's -- do not fire in a COPY.)
const char* refused_by_relation(Relation rel) {
    if (rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relispartition)
        return "it is partitioned";
    if (rel->trigdesc != nullptr)
        for (int i = 0; i < rel->trigdesc->numtriggers; ++i)
            if (!rel->trigdesc->triggers[i].tgisinternal &&
                TRIGGER_FOR_INSERT(rel->trigdesc->triggers[i].tgtype))
                return "it has INSERT triggers";
    if (rel->rd_rules != nullptr) return "it has rules";
    if (rel->rd_att->constr != nullptr && rel->rd_att->constr->num_check > 0)
        return "it has CHECK constraints";
    if (check_enable_rls(RelationGetRelid(rel), InvalidOid, true) == RLS_ENABLED)
        return "row security applies to you";
    return nullptr;
}

// COPY text format: a value with \ tab newline and carriage return escaped.
void append_copy_text(std::string& out, const std::string& value) {
    std::size_t start = 0;
    for (std::size_t i = 0; i < value.size(); ++i) {
        const char* escaped = nullptr;
        switch (value[i]) {
            case '\\':
                escaped = "\\\\";
                break;
            case '\t':
                escaped = "\\t";
                break;
            case '\n':
                escaped = "\\n";
                break;
            case '\r':
                escaped = "\\r";
                break;
            default:
                continue;
        }
        out.append(value, start, i - start);
        out += escaped;
        start = i + 1;
    }
    out.append(value, start, std::string::npos);
}

// The backup's rows in file order, handed to COPY one run of one table at a time.
class RowFeed {
  public:
    RowFeed(BackupStreamReader& stream, const std::vector<CopyTarget>& targets)
        : stream_(stream), targets_(targets), counts_(targets.size()) {
        for (const CopyTarget& t : targets) readers_.emplace_back(t.columns);
    }

    // The target of the next row, or -1 after the last.
    int next_table() {
        if (!pending_) read();
        return pending_ ? pending_table_ : -1;
    }

    void start(int table) {
        table_ = table;
        buffer_.clear();
        offset_ = 0;
    }

    // COPY's data source: the current table's rows as COPY text lines, up to maxread bytes;
    // 0 when its run ends (the next row belongs to another table, or none is left).
    int fill(char* out, int maxread) {
        const auto wanted = static_cast<std::size_t>(maxread);
        if (buffer_.size() - offset_ < wanted) {
            buffer_.erase(0, offset_);
            offset_ = 0;
        }
        while (buffer_.size() < wanted) {
            if (!pending_) read();
            if (!pending_ || pending_table_ != table_) break;
            if (!pending_->changed) append_row();  // a changed row keeps the INSERT path's
            pending_.reset();                      // meaning: counted, not inserted
        }
        const std::size_t n = std::min(wanted, buffer_.size() - offset_);
        std::memcpy(out, buffer_.data() + offset_, n);
        offset_ += n;
        return static_cast<int>(n);
    }

    std::vector<CopyCounts>& counts() { return counts_; }

  private:
    void read() {
        pending_ = stream_.next_row();
        if (!pending_) return;
        pending_table_ = -1;
        for (std::size_t t = 0; t < targets_.size(); ++t)
            if (targets_[t].backup_name == pending_->table) pending_table_ = static_cast<int>(t);
        if (pending_table_ < 0)
            throw Error(sqlstate::kBackupCorrupt, "the backup has a row of table " +
                                                      pending_->table +
                                                      ", which its header does not list");
        ++counts_[static_cast<std::size_t>(pending_table_)].rows;
    }

    void append_row() {
        RowValueReader& reader = readers_[static_cast<std::size_t>(table_)];
        reader.read(pending_->row);
        const std::size_t columns = targets_[static_cast<std::size_t>(table_)].columns.size();
        for (std::size_t c = 0; c < columns; ++c) {
            if (c > 0) buffer_ += '\t';
            const std::string* value = reader.value(c);
            if (value == nullptr)
                buffer_ += "\\N";
            else
                append_copy_text(buffer_, *value);
        }
        buffer_ += '\n';
    }

    BackupStreamReader& stream_;
    const std::vector<CopyTarget>& targets_;
    std::vector<RowValueReader> readers_;
    std::vector<CopyCounts> counts_;
    std::optional<RowLine> pending_;  // read, not yet loaded (its text is the stream's)
    int pending_table_ = -1;
    int table_ = -1;
    std::string buffer_;
    std::size_t offset_ = 0;
};

// COPY's data source callback has no argument of its own: the feed of the COPY running.
RowFeed* active_feed = nullptr;
// Set when COPY was stopped on purpose (the bulk path gave up), read after its error.
bool gave_up = false;

int copy_data_source(void* out, int /*minread*/, int maxread) {
    return pg::raising_callback([&] {
        if (active_feed == nullptr)
            throw Error(sqlstate::kInternalError, "COPY asked for rows outside restore_backup");
        return active_feed->fill(static_cast<char*>(out), maxread);
    });
}

class ActiveFeed {
  public:
    explicit ActiveFeed(RowFeed& feed) { active_feed = &feed; }
    ~ActiveFeed() { active_feed = nullptr; }
    ActiveFeed(const ActiveFeed&) = delete;
    ActiveFeed& operator=(const ActiveFeed&) = delete;
};

// One COPY FROM of the feed's current run into `target`, as DoCopy runs one: the caller's
// INSERT privilege on the restored columns checked, row security refused, with the
// backup's output settings pinned while COPY parses the values.
using Settings = std::vector<std::pair<std::string, std::string>>;

std::int64_t copy_run(const CopyTarget& target, const Settings& settings, RowFeed& feed) {
    ActiveFeed active(feed);
    const auto processed = pg::pg_call([&]() -> std::int64_t {
        Relation rel = table_open(target.relid, RowExclusiveLock);
        if (const char* why = refused_by_relation(rel)) {
            gave_up = true;
            elog(ERROR, "restore_backup: COPY of %s refused: %s", RelationGetRelationName(rel),
                 why);
        }
        ParseState* pstate = make_parsestate(nullptr);
        pstate->p_sourcetext = "";
        ParseNamespaceItem* item =
            addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock, nullptr, false, false);
        item->p_rte->requiredPerms = ACL_INSERT;
        List* names = NIL;
        for (const std::string& column : target.columns) {
            const int attnum = attnameAttNum(rel, column.c_str(), false);
            item->p_rte->insertedCols = bms_add_member(item->p_rte->insertedCols,
                                                       attnum - FirstLowInvalidHeapAttributeNumber);
            names = lappend(names, makeString(pstrdup(column.c_str())));
        }
        ExecCheckRTPerms(pstate->p_rtable, true);
        List* options =
            list_make1(makeDefElem(pstrdup("encoding"), (Node*)makeString(pstrdup("UTF8")), -1));
        CommandCounterIncrement();
        PushActiveSnapshot(GetTransactionSnapshot());
        // On an error the caller's subtransaction rollback restores the settings.
        const int level = NewGUCNestLevel();
        for (const auto& [name, value] : settings)
            (void)set_config_option(name.c_str(), value.c_str(), PGC_USERSET, PGC_S_SESSION,
                                    GUC_ACTION_SAVE, true, 0, false);
        CopyFromState copy =
            BeginCopyFrom(pstate, rel, nullptr, nullptr, false, copy_data_source, names, options);
        const uint64 rows = CopyFrom(copy);
        EndCopyFrom(copy);
        AtEOXact_GUC(true, level);
        PopActiveSnapshot();
        free_parsestate(pstate);
        table_close(rel, NoLock);
        return static_cast<std::int64_t>(rows);
    });
    return processed;
}

}  // namespace

std::string copy_path_refused(pg::SpiSession& spi, Oid relid) {
    const std::optional<std::string> why =
        spi.execute(refusal, {pg::Arg::of(ObjectIdGetDatum(relid))}).text(0, 1);
    if (why && !why->empty()) return *why;
    const bool rls =
        pg::pg_call([&] { return check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED; });
    return rls ? "row security applies to you" : "";
}

std::vector<CopyCounts> copy_backup_rows(Datum backup_id, const std::vector<CopyTarget>& targets) {
    const std::string owner = pg::current_owner();
    BackupRecord record;
    std::unique_ptr<BackupSource> file;
    {
        pg::SpiSession spi(pg::SpiSession::Access::kReadOnly);
        std::optional<BackupRecord> found = find_backup(spi, backup_id, owner, false, false);
        if (!found) unknown_backup(backup_id);
        record = *found;
        file = open_backup_source(record, spi, true);
    }
    ZstdReader zstd(*file);
    BackupStreamReader stream(zstd, pg::make_sha256());
    Settings settings;  // only those an export pins: a crafted header sets nothing else
    for (const auto& [name, value] : stream.header().settings)
        if (is_pinned_output_setting(name)) settings.emplace_back(name, value);
    RowFeed feed(stream, targets);
    // A backup writes each table's rows together; one split in many runs (a COPY each)
    // is loaded faster by the INSERT path.
    const std::size_t max_runs = 4 * targets.size() + 16;
    std::size_t runs = 0;
    gave_up = false;
    try {
        for (int t = feed.next_table(); t >= 0; t = feed.next_table()) {
            if (++runs > max_runs) throw CopyGaveUp{};
            feed.start(t);
            feed.counts()[static_cast<std::size_t>(t)].inserted +=
                copy_run(targets[static_cast<std::size_t>(t)], settings, feed);
        }
    } catch (const pg::PgError&) {
        if (gave_up) throw CopyGaveUp{};
        throw;
    }
    pg::pg_call([] { CommandCounterIncrement(); });
    const std::string actual = file->sha256_hex();
    if (actual != record.file_sha256) sha256_mismatch(record, actual);
    return feed.counts();
}

}  // namespace batchguard::backup
