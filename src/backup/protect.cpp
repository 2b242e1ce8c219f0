// protect_table, unprotect_table, last_backup_id and the triggers behind them (see
// protect.hpp). The deleted rows are rendered when the trigger fires (the transition table
// is gone after the statement) into a per-transaction buffer that spills to a temporary
// file, so a huge delete does not hold its rows in memory; at pre-commit the buffer becomes
// an ordinary backup (write_collected_backup: same format, storage, quotas and audit).
#include "backup/protect.hpp"

#include "backup/dynamic_sql.hpp"
#include "backup/export.hpp"
#include "backup/settings_scope.hpp"
#include "core/backup_format.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"
#include "pg/settings.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "catalog/pg_inherits.h"
#include "commands/event_trigger.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "mb/pg_wchar.h"
#include "storage/buffile.h"
#include "catalog/pg_index.h"
#include "utils/acl.h"
#include "utils/datum.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/rls.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"
}

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

using namespace batchguard;
using namespace batchguard::backup;

namespace {

namespace cfg = batchguard::settings;

constexpr const char* kDeleteTrigger = "batchguard_protect";
constexpr const char* kTruncateTrigger = "batchguard_refuse_truncate";
// On tables with ON DELETE SET NULL / SET DEFAULT foreign keys to covered tables: collects
// the rows those actions change.
constexpr const char* kChangeTrigger = "batchguard_protect_changes";
// Rendered rows stay in memory up to this size, then go to a temporary file.
constexpr std::size_t kMemoryLimit = std::size_t{1} << 20;
// BufFile's segment size (buffile.c: MAX_PHYSICAL_FILESIZE).
constexpr std::uint64_t kSegmentBytes = 0x40000000;

// ---------------------------------------------------------------------------------------
// The transaction's pending backup.

struct CollectedTable {
    Oid relid = InvalidOid;
    BackupTable meta;
    int natts = 0;             // of the descriptor its rows were rendered with
    std::int64_t rows = 0;     // its lines in the backup
    std::int64_t changed = 0;  // of which rows a delete changed (SET NULL / SET DEFAULT)
    char action = 'n';         // the foreign-key action that changed the last of them
    std::vector<std::string> changed_columns;  // every column a delete changed
    Oid checked_user = InvalidOid;             // the role last found allowed to back up its rows
};

// A row a delete changed, under its identity (table index, then its primary key's values,
// or all its values without a key): where its line is, and the original values of the
// columns the deletes changed, so that the row changed again or deleted later in the
// transaction gets one line with its values from before the transaction.
struct ChangedRow {
    std::uint64_t offset = 0, length = 0;
    std::vector<std::pair<int, std::optional<std::string>>> original;  // attribute index, text
    // A deleted row of a table whose rows deletes may change ("d" keys): the hash of its
    // values as deleted, to recognise the change that a later-firing trigger reports.
    std::size_t image = 0;
};

// The state before a subtransaction first collected rows: its rollback returns to it.
struct Mark {
    SubTransactionId subxact;
    std::uint64_t length;
    std::size_t tables;
    std::vector<std::int64_t> rows, changed;
    std::vector<std::size_t> columns;
    std::size_t undo, dead;
};

struct Pending {
    std::string backup_id, owner;
    Oid owner_role = InvalidOid;
    std::vector<CollectedTable> tables;
    std::string memory;         // rendered lines not yet spilled
    BufFile* spill = nullptr;   // TopTransactionContext / TopTransactionResourceOwner
    std::uint64_t spilled = 0;  // bytes of the spill file in use
    std::vector<Mark> marks;
    std::unordered_map<std::string, ChangedRow> changed_rows;
    // How to undo each change of changed_rows (key, entry before it), for rollbacks.
    std::vector<std::pair<std::string, std::optional<ChangedRow>>> undo;
    // Lines replaced by a later line of the same row (offset, length): not written.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> dead;

    std::uint64_t length() const { return spilled + memory.size(); }
    std::int64_t total_rows() const {
        std::int64_t n = 0;
        for (const CollectedTable& t : tables) n += t.rows;
        return n;
    }
    int find(Oid relid) const {
        for (std::size_t i = 0; i < tables.size(); ++i)
            if (tables[i].relid == relid) return static_cast<int>(i);
        return -1;
    }
};

Pending* pending = nullptr;
// What last_backup_id() returns outside a transaction that deleted from a protected table:
// the backup of the last committed transaction that did (none if it deleted nothing).
std::optional<std::string> last_committed;
std::optional<std::string> written;   // written at pre-commit, not committed yet
bool deleted_in_transaction = false;  // a DELETE on a protected table ran (maybe of no row)
std::vector<Oid> paused;              // see ProtectionPause
bool dropping_own_triggers = false;   // unprotect_table drops our triggers
bool callbacks_registered = false;

void forget_pending() {
    // The spill file and its memory belong to the transaction: its end releases them.
    delete pending;
    pending = nullptr;
}

void flush_to_spill(Pending& p) {
    if (p.memory.empty()) return;
    pg::pg_call([&] {
        if (p.spill == nullptr) {
            ResourceOwner owner = CurrentResourceOwner;
            MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
            CurrentResourceOwner = TopTransactionResourceOwner;
            PG_TRY();
            { p.spill = BufFileCreateTemp(false); }
            PG_FINALLY();
            {
                CurrentResourceOwner = owner;
                MemoryContextSwitchTo(old);
            }
            PG_END_TRY();
        }
        if (BufFileSeek(p.spill, static_cast<int>(p.spilled / kSegmentBytes),
                        static_cast<off_t>(p.spilled % kSegmentBytes), SEEK_SET) != 0)
            ereport(ERROR, (errcode_for_file_access(),
                            errmsg("could not seek in the temporary file of deleted rows")));
        BufFileWrite(p.spill, p.memory.data(), p.memory.size());
    });
    p.spilled += p.memory.size();
    p.memory.clear();
}

// Back to the state of a mark (a rolled-back savepoint's rows are dropped).
void truncate_to(Pending& p, const Mark& mark) {
    if (mark.length >= p.spilled) {
        p.memory.resize(mark.length - p.spilled);
    } else {
        p.memory.clear();
        p.spilled = mark.length;
    }
    p.tables.resize(mark.tables);
    for (std::size_t i = 0; i < p.tables.size(); ++i) {
        p.tables[i].rows = mark.rows[i];
        p.tables[i].changed = mark.changed[i];
        p.tables[i].changed_columns.resize(mark.columns[i]);
    }
    while (p.undo.size() > mark.undo) {
        auto& [key, before] = p.undo.back();
        if (before)
            p.changed_rows[key] = std::move(*before);
        else
            p.changed_rows.erase(key);
        p.undo.pop_back();
    }
    p.dead.resize(mark.dead);
}

// Sets (or, with nullopt, removes) the changed row under key, undoably.
void set_changed_row(Pending& p, const std::string& key, std::optional<ChangedRow> entry) {
    auto it = p.changed_rows.find(key);
    p.undo.emplace_back(key, it == p.changed_rows.end()
                                 ? std::nullopt
                                 : std::optional<ChangedRow>(std::move(it->second)));
    if (entry)
        p.changed_rows[key] = std::move(*entry);
    else if (it != p.changed_rows.end())
        p.changed_rows.erase(it);
}

void write_pending();

void xact_callback(XactEvent event, void*) {
    switch (event) {
        case XACT_EVENT_PRE_COMMIT:
            if (pending != nullptr && pending->total_rows() > 0) {
                // May raise an ERROR: the transaction then aborts, nothing is deleted.
                pg::run_guarded(nullptr, [](FunctionCallInfo) -> Datum {
                    // No statement runs now: the writes need a snapshot of their own (an
                    // error leaves it to the abort to pop).
                    pg::pg_call([] { PushActiveSnapshot(GetTransactionSnapshot()); });
                    write_pending();
                    pg::pg_call([] { PopActiveSnapshot(); });
                    return 0;
                });
            }
            break;
        case XACT_EVENT_PRE_PREPARE:
            if (pending != nullptr && pending->total_rows() > 0)
                ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                                errmsg("cannot PREPARE a transaction that deleted rows from a "
                                       "protected table"),
                                errdetail("The backup of the deleted rows is written when the "
                                          "transaction commits."),
                                errhint("Delete from protected tables in transactions that are not "
                                        "prepared.")));
            break;
        case XACT_EVENT_COMMIT:
        case XACT_EVENT_PARALLEL_COMMIT:
            if (deleted_in_transaction) last_committed = std::move(written);
            written.reset();
            deleted_in_transaction = false;
            forget_pending();
            break;
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PARALLEL_ABORT:
        case XACT_EVENT_PREPARE:
            written.reset();
            deleted_in_transaction = false;
            forget_pending();
            break;
        default:
            break;
    }
}

void subxact_callback(SubXactEvent event, SubTransactionId mine, SubTransactionId parent, void*) {
    if (pending == nullptr || pending->marks.empty() || pending->marks.back().subxact != mine)
        return;
    std::vector<Mark>& marks = pending->marks;
    if (event == SUBXACT_EVENT_ABORT_SUB) {
        truncate_to(*pending, marks.back());
        marks.pop_back();
    } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
        // The parent owns these rows now; its own earlier mark (or none, at the top level)
        // is where its rollback returns to.
        if (parent == TopSubTransactionId ||
            (marks.size() > 1 && marks[marks.size() - 2].subxact == parent))
            marks.pop_back();
        else
            marks.back().subxact = parent;
    }
}

void register_callbacks() {
    if (callbacks_registered) return;
    pg::pg_call([] {
        RegisterXactCallback(xact_callback, nullptr);
        RegisterSubXactCallback(subxact_callback, nullptr);
    });
    callbacks_registered = true;
}

std::string new_uuid_text() {
    return pg::pg_call([] {
        Datum u = DirectFunctionCall1(gen_random_uuid, 0);
        return std::string(DatumGetCString(DirectFunctionCall1(uuid_out, u)));
    });
}

// ---------------------------------------------------------------------------------------
// Collecting.

// What a backup header says of a table, read from the relation (no SQL: this runs for every
// deleting transaction).
BackupTable describe_relation(Relation relation) {
    BackupTable meta;
    pg::pg_call([&] {
        meta.name = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(relation)),
                                               RelationGetRelationName(relation));
        meta.owner = GetUserNameFromId(relation->rd_rel->relowner, false);
        TupleDesc desc = RelationGetDescr(relation);
        for (int i = 0; i < desc->natts; ++i) {
            Form_pg_attribute a = TupleDescAttr(desc, i);
            if (a->attisdropped) continue;
            // as format_type(atttypid, atttypmod) writes it
            meta.columns.push_back(
                {NameStr(a->attname),
                 format_type_extended(a->atttypid, a->atttypmod,
                                      FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_ALLOW_INVALID)});
        }
        const Oid key = RelationGetPrimaryKeyIndex(relation);
        if (OidIsValid(key)) {
            HeapTuple tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(key));
            if (HeapTupleIsValid(tuple)) {
                auto* index = reinterpret_cast<Form_pg_index>(GETSTRUCT(tuple));
                for (int k = 0; k < index->indnkeyatts; ++k) {
                    const AttrNumber n = index->indkey.values[k];
                    if (n > 0)
                        meta.key_columns.push_back(NameStr(TupleDescAttr(desc, n - 1)->attname));
                }
                ReleaseSysCache(tuple);
            }
        }
    });
    return meta;
}

// The deleting role must be able to read every row it deletes (a backup is readable by its
// owner): SELECT on the table, and no row security that could hide some of them from it
// (foreign-key cascades bypass row security; a DELETE's own policies may differ from its
// SELECT policies). Checked when the rows are collected, for the role deleting them.
// Returns whether the role may write the table (INSERT, or UPDATE of some column).
bool require_readable(Oid relid, Oid user, const std::string& name, bool changed) {
    bool select = false, rls = false, writable = false;
    pg::pg_call([&] {
        select = pg_class_aclcheck(relid, user, ACL_SELECT) == ACLCHECK_OK;
        rls = check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED;
        // (any of the two on the table, or UPDATE of any column)
        writable = pg_class_aclcheck(relid, user, ACL_INSERT | ACL_UPDATE) == ACLCHECK_OK ||
                   pg_attribute_aclcheck_all(relid, user, ACL_UPDATE, ACLMASK_ANY) == ACLCHECK_OK;
    });
    if (!select)
        throw Error(sqlstate::kInsufficientPrivilege,
                    std::string("permission denied to back up the rows ") +
                        (changed ? "changed in" : "deleted from") + " protected table " + name,
                    std::string("The rows ") + (changed ? "a delete changes in" : "deleted from") +
                        " a protected table go into a backup of the role that deletes them, "
                        "which must be able to read them (SELECT).",
                    "Grant SELECT on the table to the deleting role, or delete as a role that "
                    "can read it.");
    if (rls)
        throw Error(sqlstate::kInsufficientPrivilege,
                    std::string("cannot back up the rows ") +
                        (changed ? "changed in" : "deleted from") + " protected table " + name +
                        ": row security applies to you there",
                    std::string("A backup must not let its owner read rows they could not read "
                                "before, and row security may hide some of the ") +
                        (changed ? "changed" : "deleted") + " rows from you.",
                    "Delete as a role that row security does not apply to (the table's owner "
                    "or a role with BYPASSRLS), or remove the protection with "
                    "batchguard.unprotect_table().");
    return writable;
}

bool is_paused(Oid relid) { return std::find(paused.begin(), paused.end(), relid) != paused.end(); }

// Renders rows of one descriptor: each live column's text by its type's output function
// (under the caller's PinnedOutputSettings), the row as a JSON object.
class RowRenderer {
  public:
    explicit RowRenderer(TupleDesc desc) : desc_(desc) {
        for (int i = 0; i < desc->natts; ++i) {
            if (TupleDescAttr(desc, i)->attisdropped) continue;
            std::string n;
            append_json_string(n, NameStr(TupleDescAttr(desc, i)->attname));
            names_.push_back(n + ":");
            live_.push_back(i);
        }
        functions_.resize(static_cast<std::size_t>(desc->natts));
        texts_.assign(static_cast<std::size_t>(desc->natts), nullptr);
        pg::pg_call([&] {
            for (int i : live_) {
                Oid output = InvalidOid;
                bool varlena = false;
                getTypeOutputInfo(TupleDescAttr(desc, i)->atttypid, &output, &varlena);
                fmgr_info(output, &functions_[static_cast<std::size_t>(i)]);
            }
            memory_ = AllocSetContextCreate(CurrentMemoryContext, "pg_batchguard protected rows",
                                            ALLOCSET_DEFAULT_SIZES);
        });
    }
    RowRenderer(const RowRenderer&) = delete;
    RowRenderer& operator=(const RowRenderer&) = delete;

    // Renders the values of a slot whose attributes are all loaded; inside pg::pg_call. The
    // texts live until reset().
    void load(TupleTableSlot* slot) {
        MemoryContext old = MemoryContextSwitchTo(memory_);
        for (int i : live_)
            texts_[static_cast<std::size_t>(i)] =
                slot->tts_isnull[i] ? nullptr
                                    : OutputFunctionCall(&functions_[static_cast<std::size_t>(i)],
                                                         slot->tts_values[i]);
        MemoryContextSwitchTo(old);
    }
    const char* text(int attribute) const { return texts_[static_cast<std::size_t>(attribute)]; }

    // The row object; the columns in `original` get those values instead of the loaded ones.
    void row_json(std::string& out,
                  const std::vector<std::pair<int, std::optional<std::string>>>* original) const {
        out.clear();
        out.push_back('{');
        for (std::size_t c = 0; c < live_.size(); ++c) {
            if (c > 0) out.push_back(',');
            out += names_[c];
            const char* value = text(live_[c]);
            if (original != nullptr)
                for (const auto& [attribute, text] : *original)
                    if (attribute == live_[c]) value = text ? text->c_str() : nullptr;
            if (value == nullptr)
                out += "null";
            else
                append_json_string(out, value);
        }
        out.push_back('}');
    }

    // Who the loaded row is: its key's values, or all its values for a table without a key.
    std::string identity(const std::vector<int>& key) const {
        std::string out;
        if (key.empty()) {
            row_json(out, nullptr);
            return out;
        }
        for (int attribute : key) {
            const char* value = text(attribute);
            if (value == nullptr)
                out += "null";
            else
                append_json_string(out, value);
            out.push_back(',');
        }
        return out;
    }

    void reset() {
        pg::pg_call([&] {
            MemoryContextReset(memory_);
            CHECK_FOR_INTERRUPTS();
        });
    }
    void close() {
        pg::pg_call([&] { MemoryContextDelete(memory_); });
    }

  private:
    TupleDesc desc_;
    std::vector<std::string> names_;  // "name": per live attribute
    std::vector<int> live_;
    std::vector<FmgrInfo> functions_;
    std::vector<const char*> texts_;  // by attribute index
    MemoryContext memory_ = nullptr;
};

// Reads a transition table from its start with a read pointer of its own (other triggers,
// and our own queries, read the same table).
class TransitionReader {
  public:
    TransitionReader(Tuplestorestate* rows, TupleDesc desc) : rows_(rows) {
        pg::pg_call([&] {
            slot_ = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
            pointer_ = tuplestore_alloc_read_pointer(rows, EXEC_FLAG_REWIND);
            tuplestore_select_read_pointer(rows, pointer_);
            tuplestore_rescan(rows);
        });
    }
    // The next row with all its attributes loaded, or nullptr; inside pg::pg_call.
    TupleTableSlot* next() {
        tuplestore_select_read_pointer(rows_, pointer_);
        if (!tuplestore_gettupleslot(rows_, true, false, slot_)) return nullptr;
        slot_getallattrs(slot_);
        return slot_;
    }
    void close() {
        pg::pg_call([&] {
            tuplestore_select_read_pointer(rows_, 0);
            ExecDropSingleTupleTableSlot(slot_);
        });
    }

  private:
    Tuplestorestate* rows_;
    TupleTableSlot* slot_ = nullptr;
    int pointer_ = 0;
};

// Appends a rendered line to the pending backup, converted to UTF-8; returns where it is.
std::pair<std::uint64_t, std::uint64_t> append_line(Pending& p, std::string& line) {
    if (GetDatabaseEncoding() != PG_UTF8 && GetDatabaseEncoding() != PG_SQL_ASCII) {
        pg::pg_call([&] {
            const char* converted =
                pg_server_to_any(line.data(), static_cast<int>(line.size()), PG_UTF8);
            if (converted != line.data()) {
                line.assign(converted);
                pfree(const_cast<char*>(converted));
            }
        });
    }
    const std::uint64_t offset = p.length();
    p.memory += line;
    if (p.memory.size() >= kMemoryLimit) flush_to_spill(p);
    return {offset, line.size()};
}

// The attribute indexes of a table's primary key (empty without one).
std::vector<int> key_attributes(const BackupTable& meta, TupleDesc desc) {
    std::vector<int> key;
    for (const std::string& name : meta.key_columns)
        for (int i = 0; i < desc->natts; ++i)
            if (!TupleDescAttr(desc, i)->attisdropped &&
                name == NameStr(TupleDescAttr(desc, i)->attname))
                key.push_back(i);
    return key;
}

std::string changed_key(std::size_t table, const std::string& identity) {
    return std::to_string(table) + ":" + identity;
}

// The table's entry in the transaction's pending backup (created with the backup), after
// the checks every collected row passes: one owner per backup, the deleting role may read
// the table, its columns did not change since its first rows. A savepoint collecting for
// the first time remembers where it started.
std::size_t prepare_table(Relation relation, bool changed) {
    const Oid relid = RelationGetRelid(relation);
    const std::string owner = pg::current_owner();
    const Oid user = GetUserId();
    if (pending == nullptr) {
        auto fresh = std::make_unique<Pending>();
        fresh->backup_id = new_uuid_text();
        fresh->owner = owner;
        fresh->owner_role = user;
        pending = fresh.release();
    } else if (pending->owner != owner) {
        throw Error(sqlstate::kFeatureNotSupported,
                    "a transaction that deleted rows from protected tables as " + pending->owner +
                        " cannot delete such rows as " + owner,
                    "The rows deleted from protected tables in one transaction go into one "
                    "backup, of one owner.",
                    "Commit before deleting as another role or identity.");
    }
    Pending& p = *pending;
    TupleDesc desc = RelationGetDescr(relation);

    const SubTransactionId subxact = GetCurrentSubTransactionId();
    if (subxact != TopSubTransactionId && (p.marks.empty() || p.marks.back().subxact != subxact)) {
        Mark mark{subxact, p.length(), p.tables.size(), {}, {}, {}, p.undo.size(), p.dead.size()};
        for (const CollectedTable& t : p.tables) {
            mark.rows.push_back(t.rows);
            mark.changed.push_back(t.changed);
            mark.columns.push_back(t.changed_columns.size());
        }
        p.marks.push_back(std::move(mark));
    }

    int index = p.find(relid);
    if (index < 0) {
        CollectedTable t;
        t.relid = relid;
        t.meta = describe_relation(relation);
        t.natts = desc->natts;
        p.tables.push_back(std::move(t));
        index = static_cast<int>(p.tables.size()) - 1;
    }
    CollectedTable& table = p.tables[static_cast<std::size_t>(index)];
    if (table.checked_user != user) {
        table.meta.writable = require_readable(relid, user, table.meta.name, changed);
        table.checked_user = user;
    }
    std::size_t live = 0;
    for (int i = 0; i < desc->natts; ++i) live += TupleDescAttr(desc, i)->attisdropped ? 0 : 1;
    bool same = table.natts == desc->natts && live == table.meta.columns.size();
    for (int i = 0, c = 0; same && i < desc->natts; ++i) {
        if (TupleDescAttr(desc, i)->attisdropped) continue;
        same = table.meta.columns[static_cast<std::size_t>(c++)].name ==
               NameStr(TupleDescAttr(desc, i)->attname);
    }
    if (!same)
        throw Error(sqlstate::kFeatureNotSupported,
                    "the columns of protected table " + table.meta.name +
                        " changed after rows were deleted from it in this transaction",
                    "The rows deleted from one table in a transaction go into one backup, "
                    "with one list of columns.",
                    "Commit the deletes before ALTER TABLE, or alter the table first.");
    return static_cast<std::size_t>(index);
}

// The rows a DELETE removed. A row a delete changed earlier in the transaction gets the
// values it had before that change, and its earlier line is dropped.
void collect(Relation relation, Tuplestorestate* rows) {
    const Oid relid = RelationGetRelid(relation);
    if (is_paused(relid)) return;
    register_callbacks();
    deleted_in_transaction = true;
    if (pg::pg_call([&] { return tuplestore_tuple_count(rows); }) == 0) return;
    const std::size_t index = prepare_table(relation, false);
    Pending& p = *pending;
    TupleDesc desc = RelationGetDescr(relation);
    PinnedOutputSettings pinned;
    const std::vector<int> key = key_attributes(p.tables[index].meta, desc);
    // Deletes may change rows of this table too (it has the UPDATE trigger): its deleted
    // rows are remembered for a change reported after them (see collect_changed).
    bool changeable = false;
    if (relation->trigdesc != nullptr)
        for (int i = 0; i < relation->trigdesc->numtriggers; ++i)
            changeable = changeable ||
                         std::string_view(relation->trigdesc->triggers[i].tgname) == kChangeTrigger;
    RowRenderer renderer(desc);
    TransitionReader reader(rows, desc);
    const RowLineFormat format(p.tables[index].meta.name, nullptr);
    std::string row_json, line;
    for (;;) {
        const bool more = pg::pg_call([&] {
            TupleTableSlot* slot = reader.next();
            if (slot != nullptr) renderer.load(slot);
            return slot != nullptr;
        });
        if (!more) break;
        std::optional<ChangedRow> earlier;
        std::string identity, earlier_key;
        if (changeable || !p.changed_rows.empty()) identity = renderer.identity(key);
        if (!p.changed_rows.empty()) {
            earlier_key = changed_key(index, identity);
            auto it = p.changed_rows.find(earlier_key);
            if (it != p.changed_rows.end()) earlier = it->second;
        }
        renderer.row_json(row_json, earlier ? &earlier->original : nullptr);
        line.clear();
        format.append(line, row_json, nullptr);
        const auto [offset, length] = append_line(p, line);
        CollectedTable& table = p.tables[index];
        ++table.rows;
        if (earlier) {
            p.dead.emplace_back(earlier->offset, earlier->length);
            --table.rows;
            --table.changed;
            set_changed_row(p, earlier_key, std::nullopt);
        }
        if (changeable) {
            ChangedRow gone;
            gone.offset = offset;
            gone.length = length;
            if (earlier) gone.original = earlier->original;
            renderer.row_json(row_json, nullptr);
            gone.image = std::hash<std::string>{}(row_json);
            set_changed_row(p, "d" + changed_key(index, identity), std::move(gone));
        }
        renderer.reset();
    }
    reader.close();
    renderer.close();
}

// An ON DELETE SET NULL / SET DEFAULT foreign key of a table to a covered table.
struct DeleteAction {
    char type = 'n';       // 'n' SET NULL, 'd' SET DEFAULT
    std::vector<int> key;  // attribute indexes of the referencing columns
    std::vector<int> set;  // those the action sets (PostgreSQL 15: SET NULL (columns))
    std::string parent, parent_matches;  // FROM [ONLY] parent bg_p, and WHERE bg_p.. = bg_o..
    // Its ON UPDATE action changes the same columns the same way when a parent's key is
    // updated (the old key dangles then too): such a change counts only in a transaction
    // that deleted from a covered table (whose trigger runs before the actions' UPDATE
    // triggers), so that a transaction that only updates keys makes no backup.
    bool update_alike = false;
};

pg::Statement delete_actions_of{
    "SELECT c.confdeltype::pg_catalog.text, pg_catalog.array_to_string(c.conkey, ','),"
    "       c.confupdtype::pg_catalog.text,"
    "       pg_catalog.array_to_string(CASE WHEN pg_catalog.cardinality(c.confdelsetcols) > 0"
    "                                  THEN c.confdelsetcols ELSE c.conkey END, ','),"
    "       pg_catalog.format(CASE WHEN r.relkind = 'p' THEN '%I.%I' ELSE 'ONLY %I.%I' END,"
    "                         n.nspname, r.relname),"
    "       (SELECT pg_catalog.string_agg(pg_catalog.format('bg_p.%I OPERATOR(%I.%s) bg_o.%I',"
    "                                     pa.attname, opn.nspname, o.oprname, ca.attname),"
    "                                     ' AND ' ORDER BY k.i)"
    "          FROM ROWS FROM (pg_catalog.unnest(c.confkey), pg_catalog.unnest(c.conkey),"
    "                          pg_catalog.unnest(c.conpfeqop))"
    "               WITH ORDINALITY AS k(pk, fk, op, i)"
    "          JOIN pg_catalog.pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.pk"
    "          JOIN pg_catalog.pg_attribute ca ON ca.attrelid = c.conrelid AND ca.attnum = k.fk"
    "          JOIN pg_catalog.pg_operator o ON o.oid = k.op"
    "          JOIN pg_catalog.pg_namespace opn ON opn.oid = o.oprnamespace)"
    "  FROM pg_catalog.pg_constraint c"
    "  JOIN pg_catalog.pg_class r ON r.oid = c.confrelid"
    "  JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace"
    " WHERE c.conrelid = $1 AND c.contype = 'f' AND c.confdeltype IN ('n', 'd')"
    "   AND c.conparentid = 0"
    "   AND EXISTS (SELECT FROM batchguard.protections p"
    "                WHERE c.confrelid OPERATOR(pg_catalog.=) ANY (p.covered::pg_catalog.oid[]))"
    " ORDER BY c.conname",
    {OIDOID}};

std::vector<int> attribute_indexes(const std::string& attnums) {
    std::vector<int> out;
    std::size_t start = 0;
    while (start < attnums.size()) {
        std::size_t end = attnums.find(',', start);
        if (end == std::string::npos) end = attnums.size();
        out.push_back(std::stoi(attnums.substr(start, end - start)) - 1);
        start = end + 1;
    }
    return out;
}

// Whether an UPDATE's old and new row may be an ON DELETE action's change: the old row
// referenced a parent (no referencing column NULL) and the action's columns now hold NULL
// (SET NULL) or another value (SET DEFAULT).
bool may_be_action(const DeleteAction& a, TupleTableSlot* before, TupleTableSlot* after,
                   TupleDesc desc) {
    for (int i : a.key)
        if (before->tts_isnull[i]) return false;
    if (a.type == 'n') {
        for (int i : a.set)
            if (!after->tts_isnull[i]) return false;
        return true;
    }
    for (int i : a.set) {
        if (after->tts_isnull[i]) return true;
        const Form_pg_attribute attribute = TupleDescAttr(desc, i);
        if (!datumIsEqual(before->tts_values[i], after->tts_values[i], attribute->attbyval,
                          attribute->attlen))
            return true;
    }
    return false;
}

// The rows of a child table that an ON DELETE SET NULL / SET DEFAULT action of a covered
// parent changed, with their old values. The trigger also fires for other UPDATEs: a row
// counts when the action's columns hold what it sets and its old key has no parent row any
// more. PostgreSQL runs these actions at once (never deferred), and while the constraint
// holds a row's key references an existing parent: only the delete of that parent (in this
// statement) makes the key dangle.
void collect_changed(TriggerData* data) {
    Relation relation = data->tg_relation;
    const Oid relid = RelationGetRelid(relation);
    if (is_paused(relid)) return;
    Tuplestorestate* olds = data->tg_oldtable;
    Tuplestorestate* news = data->tg_newtable;
    if (pg::pg_call([&] { return tuplestore_tuple_count(olds); }) == 0) return;
    std::vector<DeleteAction> actions;
    {
        pg::SpiSession spi;
        pg::Rows r = spi.execute(delete_actions_of, {pg::Arg::of(ObjectIdGetDatum(relid))});
        for (std::uint64_t i = 0; i < r.size(); ++i) {
            DeleteAction a;
            a.type = r.text(i, 1).value().front();
            a.key = attribute_indexes(r.text(i, 2).value());
            const char on_update = r.text(i, 3).value().front();
            a.update_alike =
                on_update == 'n' || on_update == 'd' || (a.type == 'd' && on_update == 'c');
            a.set = attribute_indexes(r.text(i, 4).value());
            a.parent = r.text(i, 5).value();
            a.parent_matches = r.text(i, 6).value();
            if (a.update_alike && !deleted_in_transaction) continue;
            actions.push_back(std::move(a));
        }
    }
    if (actions.empty()) return;
    TupleDesc desc = RelationGetDescr(relation);

    // 1. The rows each action may have changed (by position: the old and the new transition
    //    table hold the rows in the same order).
    std::vector<std::vector<Datum>> candidates(actions.size());
    {
        TransitionReader before(olds, desc), after(news, desc);
        for (std::int64_t n = 1;; ++n) {
            const bool more = pg::pg_call([&] {
                TupleTableSlot* b = before.next();
                TupleTableSlot* a = after.next();
                if (b == nullptr || a == nullptr) return false;
                for (std::size_t k = 0; k < actions.size(); ++k)
                    if (may_be_action(actions[k], b, a, desc))
                        candidates[k].push_back(Int64GetDatum(n));
                CHECK_FOR_INTERRUPTS();
                return true;
            });
            if (!more) break;
        }
        before.close();
        after.close();
    }
    // 2. Of those, the rows whose old key has no parent row any more (as the extension's
    //    owner: row security must not hide a parent; a new snapshot sees the delete).
    std::map<std::int64_t, std::vector<std::size_t>> changed;  // position -> actions
    {
        pg::SpiSession spi;
        const std::string old_table = pg::pg_call(
            [&] { return std::string(quote_identifier(data->tg_trigger->tgoldtable)); });
        pg::pg_call([&] {
            if (SPI_register_trigger_data(data) != SPI_OK_TD_REGISTER)
                elog(ERROR, "SPI_register_trigger_data failed");
        });
        for (std::size_t k = 0; k < actions.size(); ++k) {
            if (candidates[k].empty()) continue;
            const Datum positions = pg::pg_call([&] {
                return PointerGetDatum(construct_array(
                    candidates[k].data(), static_cast<int>(candidates[k].size()), INT8OID,
                    sizeof(std::int64_t), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
            });
            pg::Rows r = run_dynamic(
                "SELECT bg_o.batchguard_n FROM (SELECT pg_catalog.row_number() OVER ()"
                " AS batchguard_n, bg_x.* FROM " +
                    old_table +
                    " bg_x) bg_o WHERE bg_o.batchguard_n OPERATOR(pg_catalog.=) ANY ($1)"
                    " AND NOT EXISTS (SELECT FROM " +
                    actions[k].parent + " bg_p WHERE " + actions[k].parent_matches + ")",
                {{INT8ARRAYOID, pg::Arg::of(positions)}}, false);
            for (std::uint64_t i = 0; i < r.size(); ++i) changed[r.int8(i, 1).value()].push_back(k);
        }
    }
    if (changed.empty()) return;

    // 3. Their old values, as changed rows (one line per row and transaction: a row changed
    //    again replaces its earlier line, keeping the values from before the first change).
    register_callbacks();
    deleted_in_transaction = true;
    const std::size_t index = prepare_table(relation, true);
    Pending& p = *pending;
    PinnedOutputSettings pinned;
    const std::vector<int> key = key_attributes(p.tables[index].meta, desc);
    RowRenderer before_text(desc), after_text(desc);
    TransitionReader before(olds, desc), after(news, desc);
    const RowLineFormat format(p.tables[index].meta.name, nullptr);
    std::string row_json, line, changed_json;
    auto next_changed = changed.begin();
    for (std::int64_t n = 1; next_changed != changed.end(); ++n) {
        const bool wanted = n == next_changed->first;
        const bool more = pg::pg_call([&] {
            TupleTableSlot* b = before.next();
            TupleTableSlot* a = after.next();
            if (b == nullptr || a == nullptr) return false;
            if (wanted) {
                before_text.load(b);
                after_text.load(a);
            }
            return true;
        });
        if (!more) break;
        if (!wanted) continue;
        const std::string old_key = changed_key(index, before_text.identity(key));
        ChangedRow row;
        {
            auto it = p.changed_rows.find(old_key);
            if (it != p.changed_rows.end()) {
                row = it->second;
                p.dead.emplace_back(row.offset, row.length);
                --p.tables[index].rows;
                --p.tables[index].changed;
            }
        }
        CollectedTable& table = p.tables[index];
        for (std::size_t k : next_changed->second) {
            table.action = actions[k].type;
            for (int i : actions[k].set) {
                bool known = false;
                for (const auto& o : row.original) known = known || o.first == i;
                if (!known) {
                    const char* text = before_text.text(i);
                    row.original.emplace_back(
                        i, text == nullptr ? std::nullopt : std::optional<std::string>(text));
                }
                const std::string name = NameStr(TupleDescAttr(desc, i)->attname);
                if (std::find(table.changed_columns.begin(), table.changed_columns.end(), name) ==
                    table.changed_columns.end())
                    table.changed_columns.push_back(name);
            }
        }
        // The same statement's actions may also have deleted the row after this change: the
        // DELETE's statement trigger can fire first (PostgreSQL queues a table's statement
        // event again after each action's query). Then its deleted line gives way to one with
        // the values from before the change.
        const std::string new_key = changed_key(index, after_text.identity(key));
        const std::string gone_key = "d" + new_key;
        std::optional<ChangedRow> gone;
        if (auto it = p.changed_rows.find(gone_key); it != p.changed_rows.end()) {
            after_text.row_json(row_json, nullptr);
            if (it->second.image == std::hash<std::string>{}(row_json)) gone = it->second;
        }
        if (gone) {
            p.dead.emplace_back(gone->offset, gone->length);
            for (const auto& o : row.original) {
                bool known = false;
                for (const auto& g : gone->original) known = known || g.first == o.first;
                if (!known) gone->original.push_back(o);
            }
            before_text.row_json(row_json, &gone->original);
            line.clear();
            format.append(line, row_json, nullptr);
            std::tie(gone->offset, gone->length) = append_line(p, line);
            set_changed_row(p, old_key, std::nullopt);
            set_changed_row(p, gone_key, std::move(gone));
        } else {
            changed_json = "[";
            for (const auto& o : row.original) {
                if (changed_json.size() > 1) changed_json.push_back(',');
                append_json_string(changed_json, NameStr(TupleDescAttr(desc, o.first)->attname));
            }
            changed_json.push_back(']');
            before_text.row_json(row_json, &row.original);
            line.clear();
            format.append(line, row_json, nullptr, &changed_json);
            std::tie(row.offset, row.length) = append_line(p, line);
            ++table.rows;
            ++table.changed;
            if (new_key != old_key) set_changed_row(p, old_key, std::nullopt);
            set_changed_row(p, new_key, std::move(row));
        }
        before_text.reset();
        after_text.reset();
        ++next_changed;
    }
    before.close();
    after.close();
    before_text.close();
    after_text.close();
}

// ---------------------------------------------------------------------------------------
// Writing at pre-commit.

pg::Statement retention_of{
    // The longest retention of the protections covering the tables (NULL: the default).
    "SELECT pg_catalog.max(coalesce(p.retention, pg_catalog.make_interval(secs => $2)))"
    "  FROM batchguard.protections p"
    " WHERE p.covered::pg_catalog.oid[] OPERATOR(pg_catalog.&&) $1",
    {OIDARRAYOID, FLOAT8OID}};

void write_pending() {
    Pending& p = *pending;
    CollectedBackup backup;
    backup.backup_id = p.backup_id;
    backup.owner = p.owner;
    backup.owner_role = p.owner_role;
    std::vector<Datum> oids;
    std::string actions = "{", counts = "{";
    std::int64_t total = 0;
    for (const CollectedTable& t : p.tables) {
        if (t.rows == 0) continue;
        backup.tables.push_back(t.meta);
        backup.counts.push_back(t.rows);
        oids.push_back(ObjectIdGetDatum(t.relid));
        total += t.rows;
        if (actions.size() > 1) actions += ",";
        append_json_string(actions, t.meta.name);
        // as delete_with_backup records it (export.cpp)
        const char* action = t.changed == 0       ? "delete"
                             : t.changed < t.rows ? "delete and change"
                             : t.action == 'n'    ? "set null"
                                                  : "set default";
        actions += ":{\"action\":\"";
        actions += action;
        actions += "\",\"columns\":[";
        for (std::size_t c = 0; c < t.changed_columns.size(); ++c) {
            if (c > 0) actions += ",";
            append_json_string(actions, t.changed_columns[c]);
        }
        actions += "]}";
        if (counts.size() > 1) counts += ",";
        append_json_string(counts, t.meta.name);
        counts += ":" + std::to_string(t.rows);
    }
    actions += "}";
    counts += "}";
    backup.delete_actions = actions;
    std::string source;
    append_json_string(source, backup.tables.front().name);
    backup.audit_detail = "{\"source\":" + source + ",\"rows\":" + std::to_string(total) +
                          ",\"tables\":" + counts + "}";
    Datum retention = 0;
    bool has_retention = false;
    {
        const Datum array = pg::pg_call([&] {
            return PointerGetDatum(construct_array(oids.data(), static_cast<int>(oids.size()),
                                                   OIDOID, sizeof(Oid), true, TYPALIGN_INT));
        });
        pg::SpiSession spi;
        pg::Rows r =
            spi.execute(retention_of,
                        {pg::Arg::of(array), pg::Arg::of(Float8GetDatum(cfg::backup_retention_s))});
        if (auto d = r.datum_for_caller(0, 1)) {
            retention = *d;
            has_retention = true;
        }
    }
    if (has_retention) backup.retention = retention;
    // The live parts of the buffer: every line but those a later line of the same row
    // replaced.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> live;
    {
        std::vector<std::pair<std::uint64_t, std::uint64_t>> dead = p.dead;
        std::sort(dead.begin(), dead.end());
        std::uint64_t from = 0;
        for (const auto& [offset, length] : dead) {
            if (offset > from) live.emplace_back(from, offset);
            from = std::max(from, offset + length);
        }
        if (from < p.length()) live.emplace_back(from, p.length());
    }
    backup.bytes = 0;
    for (const auto& [from, to] : live) backup.bytes += to - from;
    backup.write_rows = [&p, &live](const std::function<void(std::string_view)>& line) {
        std::string chunk;
        for (const auto& [from, to] : live) {
            if (from < p.spilled) {
                chunk.resize(std::size_t{1} << 16);
                pg::pg_call([&] {
                    if (BufFileSeek(p.spill, static_cast<int>(from / kSegmentBytes),
                                    static_cast<off_t>(from % kSegmentBytes), SEEK_SET) != 0)
                        ereport(ERROR, (errcode_for_file_access(),
                                        errmsg("could not seek in the temporary file of deleted "
                                               "rows")));
                });
                std::uint64_t left = std::min(to, p.spilled) - from;
                while (left > 0) {
                    const std::size_t want =
                        static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size()));
                    const std::size_t got =
                        pg::pg_call([&] { return BufFileRead(p.spill, chunk.data(), want); });
                    if (got != want)
                        throw Error(sqlstate::kIoError,
                                    "could not read the temporary file of deleted rows");
                    line(std::string_view(chunk.data(), got));
                    left -= got;
                }
            }
            if (to > p.spilled) {
                const std::uint64_t start = std::max(from, p.spilled) - p.spilled;
                line(std::string_view(p.memory).substr(
                    static_cast<std::size_t>(start),
                    static_cast<std::size_t>(to - p.spilled - start)));
            }
        }
    };
    write_collected_backup(backup);
    written = p.backup_id;
    if (p.spill != nullptr) {
        pg::pg_call([&] { BufFileClose(p.spill); });
        p.spill = nullptr;
    }
}

// ---------------------------------------------------------------------------------------
// protect_table / unprotect_table.

pg::Statement relation_info{
    "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), c.relkind::pg_catalog.text,"
    "       pg_catalog.pg_has_role(c.relowner, 'USAGE'),"
    "       pg_catalog.pg_get_userbyid(c.relowner)::pg_catalog.text"
    "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.oid = $1",
    {OIDOID}};

pg::Statement partitions_of{
    "SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = $1", {OIDOID}};

// Foreign keys whose referenced table is $1 (top-level ones and their clones on partitions).
pg::Statement references_to{
    "SELECT c.conrelid, c.confdeltype::pg_catalog.text, c.conname::pg_catalog.text,"
    "       pg_catalog.format('%I.%I', n.nspname, r.relname)"
    "  FROM pg_catalog.pg_constraint c"
    "  JOIN pg_catalog.pg_class r ON r.oid = c.conrelid"
    "  JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace"
    " WHERE c.contype = 'f' AND c.confrelid = $1 ORDER BY c.conrelid, c.conname",
    {OIDOID}};

pg::Statement has_trigger{
    "SELECT t.tgname::pg_catalog.text FROM pg_catalog.pg_trigger t"
    " WHERE t.tgrelid = $1 AND t.tgname OPERATOR(pg_catalog.=) $2::pg_catalog.name",
    {OIDOID, TEXTOID}};

pg::Statement check_retention{
    "SELECT $1 > '0'::pg_catalog.interval,"
    "       $1 <= pg_catalog.make_interval(secs => $2)",
    {INTERVALOID, FLOAT8OID}};

pg::Statement old_protection{
    "SELECT p.covered::pg_catalog.oid[] FROM batchguard.protections p"
    " WHERE p.source::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
    {OIDOID}};

pg::Statement save_protection{
    "INSERT INTO batchguard.protections AS p"
    "       (source, protected_by, retention, include_children, covered)"
    " VALUES ($1::pg_catalog.oid::pg_catalog.regclass, $2, $3, $4,"
    "         $5::pg_catalog.oid[]::pg_catalog.regclass[])"
    " ON CONFLICT (source) DO UPDATE SET protected_by = EXCLUDED.protected_by,"
    "       retention = EXCLUDED.retention, include_children = EXCLUDED.include_children,"
    "       covered = EXCLUDED.covered, protected_at = pg_catalog.now()",
    {OIDOID, TEXTOID, INTERVALOID, BOOLOID, OIDARRAYOID}};

pg::Statement remove_protection{
    "DELETE FROM batchguard.protections p"
    " WHERE p.source::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
    {OIDOID}};

// Every relation some protection covers.
pg::Statement all_covered{
    "SELECT DISTINCT c::pg_catalog.oid FROM batchguard.protections p,"
    "       pg_catalog.unnest(p.covered) c",
    {}};

struct CoveredRelation {
    Oid relid;
    std::string name;
};

CoveredRelation describe(pg::SpiSession& spi, Oid relid, bool require_owner, const char* why) {
    pg::Rows r = spi.execute(relation_info, {pg::Arg::of(ObjectIdGetDatum(relid))});
    if (r.empty())
        throw Error(sqlstate::kUndefinedTable,
                    "relation with OID " + std::to_string(relid) + " does not exist");
    const std::string name = r.text(0, 1).value();
    const std::string kind = r.text(0, 2).value_or("");
    if (kind != "r" && kind != "p")
        throw Error(sqlstate::kWrongObjectType, name + " is not a table",
                    "Only tables and partitioned tables can be protected.");
    if (require_owner && !r.boolean(0, 3).value())
        throw Error(sqlstate::kInsufficientPrivilege, "must be owner of table " + name + why,
                    "Only the table's owner (or a member of the owning role) may protect or "
                    "unprotect it.");
    return {relid, name};
}

// The relations a protection of `source` covers: the source, its partitions (all levels)
// and, with include_children, the tables its ON DELETE CASCADE, SET NULL and SET DEFAULT
// foreign keys reach, recursively (every covered table's deletes are backed up, so the
// tables its own deletes reach are covered too).
std::vector<CoveredRelation> covered_relations(pg::SpiSession& spi, Oid source,
                                               bool include_children) {
    std::vector<CoveredRelation> covered{describe(spi, source, true, "")};
    for (std::size_t next = 0; next < covered.size(); ++next) {
        const Oid relid = covered[next].relid;
        const auto add = [&](Oid child, const std::string& why) {
            for (const CoveredRelation& c : covered)
                if (c.relid == child) return;
            covered.push_back(describe(spi, child, true, why.c_str()));
        };
        pg::Rows parts = spi.execute(partitions_of, {pg::Arg::of(ObjectIdGetDatum(relid))});
        for (std::uint64_t r = 0; r < parts.size(); ++r)
            add(DatumGetObjectId(parts.datum(r, 1).value()),
                " (a partition of " + covered[next].name + ")");
        if (!include_children) continue;
        pg::Rows refs = spi.execute(references_to, {pg::Arg::of(ObjectIdGetDatum(relid))});
        for (std::uint64_t r = 0; r < refs.size(); ++r) {
            const std::string action = refs.text(r, 2).value();
            const std::string constraint = refs.text(r, 3).value();
            const std::string child = refs.text(r, 4).value();
            if (action == "n" || action == "d") {
                // The rows this key's action changes are backed up as changed rows; the
                // table is covered like the others (its own deletes too).
                add(DatumGetObjectId(refs.datum(r, 1).value()),
                    " (its foreign key " + constraint + " sets " +
                        (action == "n" ? "NULL" : "DEFAULT") + " on deletes from " +
                        covered[next].name + ")");
                continue;
            }
            if (action != "c") continue;
            add(DatumGetObjectId(refs.datum(r, 1).value()), " (its foreign key " + constraint +
                                                                " cascades deletes from " +
                                                                covered[next].name + ")");
        }
    }
    return covered;
}

Datum oid_array(const std::vector<Oid>& oids) {
    std::vector<Datum> values;
    for (Oid o : oids) values.push_back(ObjectIdGetDatum(o));
    return pg::pg_call([&] {
        return PointerGetDatum(construct_array(values.data(), static_cast<int>(values.size()),
                                               OIDOID, sizeof(Oid), true, TYPALIGN_INT));
    });
}

std::vector<Oid> oids_of(const pg::Rows& rows, int column) {
    std::vector<Oid> oids;
    if (rows.empty()) return oids;
    const std::optional<Datum> d = rows.datum(0, column);
    if (!d) return oids;
    pg::pg_call([&] {
        Datum* values = nullptr;
        bool* nulls = nullptr;
        int n = 0;
        deconstruct_array(DatumGetArrayTypeP(*d), OIDOID, sizeof(Oid), true, TYPALIGN_INT, &values,
                          &nulls, &n);
        for (int i = 0; i < n; ++i) oids.push_back(DatumGetObjectId(values[i]));
    });
    return oids;
}

std::string relation_name(Oid relid) {
    return pg::pg_call([&] {
        return std::string(quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
                                                      get_rel_name(relid)));
    });
}

struct OwnTriggerDrop {
    OwnTriggerDrop() { dropping_own_triggers = true; }
    ~OwnTriggerDrop() { dropping_own_triggers = false; }
};

// The covered relations with an ON DELETE SET NULL / SET DEFAULT foreign key to a covered
// relation: their UPDATE trigger collects the rows those actions change.
pg::Statement changed_by_actions{
    "SELECT DISTINCT c.conrelid FROM pg_catalog.pg_constraint c"
    " WHERE c.contype = 'f' AND c.confdeltype IN ('n', 'd') AND c.conparentid = 0"
    "   AND c.conrelid = ANY ($1) AND c.confrelid = ANY ($1)",
    {OIDARRAYOID}};

// Creates the triggers on the relations that need them and drops them from relations no
// protection covers any more (as the caller, who owns them).
void sync_triggers(const std::vector<Oid>& wanted, const std::vector<Oid>& maybe_unwanted) {
    pg::SpiSession spi(pg::SpiSession::Access::kReadWrite, pg::SpiSession::Identity::kAsCaller);
    const auto exists = [&](Oid relid, const char* trigger) {
        return !spi.execute(has_trigger,
                            {pg::Arg::of(ObjectIdGetDatum(relid)), pg::Arg::text(trigger)})
                    .empty();
    };
    std::vector<Oid> changed;
    {
        pg::Rows r = spi.execute(changed_by_actions, {pg::Arg::of(oid_array(wanted))});
        for (std::uint64_t i = 0; i < r.size(); ++i)
            changed.push_back(DatumGetObjectId(r.datum(i, 1).value()));
    }
    const auto in = [](const std::vector<Oid>& set, Oid relid) {
        return std::find(set.begin(), set.end(), relid) != set.end();
    };
    for (Oid relid : wanted) {
        const std::string name = relation_name(relid);
        if (!exists(relid, kDeleteTrigger))
            run_dynamic(std::string("CREATE TRIGGER ") + kDeleteTrigger + " AFTER DELETE ON " +
                            name +
                            " REFERENCING OLD TABLE AS batchguard_deleted FOR EACH STATEMENT"
                            " EXECUTE FUNCTION batchguard._protected_delete()",
                        {}, false);
        if (!exists(relid, kTruncateTrigger))
            run_dynamic(std::string("CREATE TRIGGER ") + kTruncateTrigger + " BEFORE TRUNCATE ON " +
                            name +
                            " FOR EACH STATEMENT EXECUTE FUNCTION batchguard._protected_truncate()",
                        {}, false);
        // (PostgreSQL refuses transition tables on a trigger with a column list: UPDATE OF
        // the key columns is not possible, the function skips other updates quickly.)
        if (in(changed, relid) && !exists(relid, kChangeTrigger))
            run_dynamic(std::string("CREATE TRIGGER ") + kChangeTrigger + " AFTER UPDATE ON " +
                            name +
                            " REFERENCING OLD TABLE AS batchguard_old NEW TABLE AS batchguard_new"
                            " FOR EACH STATEMENT EXECUTE FUNCTION batchguard._protected_delete()",
                        {}, false);
    }
    OwnTriggerDrop own;
    for (Oid relid : maybe_unwanted) {
        if (in(wanted, relid)) continue;
        const std::string name = relation_name(relid);
        for (const char* trigger : {kDeleteTrigger, kTruncateTrigger, kChangeTrigger})
            if (exists(relid, trigger))
                run_dynamic(std::string("DROP TRIGGER ") + trigger + " ON " + name, {}, false);
    }
    for (Oid relid : wanted)
        if (!in(changed, relid) && exists(relid, kChangeTrigger))
            run_dynamic(
                std::string("DROP TRIGGER ") + kChangeTrigger + " ON " + relation_name(relid), {},
                false);
}

std::vector<Oid> every_covered() {
    pg::SpiSession spi;
    pg::Rows r = spi.execute(all_covered, {});
    std::vector<Oid> oids;
    for (std::uint64_t i = 0; i < r.size(); ++i)
        oids.push_back(DatumGetObjectId(r.datum(i, 1).value()));
    return oids;
}

std::string sql_literal(const std::string& s) {
    return pg::pg_call([&] { return std::string(quote_literal_cstr(s.c_str())); });
}

// The protected table whose protection covers relid (itself, or the first found).
std::string protecting_table(Oid relid) {
    static pg::Statement sql{
        "SELECT p.source::pg_catalog.text FROM batchguard.protections p"
        " WHERE $1 OPERATOR(pg_catalog.=) ANY (p.covered::pg_catalog.oid[])"
        " ORDER BY p.source::pg_catalog.oid OPERATOR(pg_catalog.<>) $1, p.protected_at LIMIT 1",
        {OIDOID}};
    pg::SpiSession spi;
    pg::Rows r = spi.execute(sql, {pg::Arg::of(ObjectIdGetDatum(relid))});
    return r.empty() ? relation_name(relid) : r.text(0, 1).value();
}

}  // namespace

namespace batchguard::backup {

ProtectionPause::ProtectionPause(const std::vector<Oid>& relations) : size_before_(paused.size()) {
    paused.insert(paused.end(), relations.begin(), relations.end());
}

ProtectionPause::~ProtectionPause() { paused.resize(size_before_); }

}  // namespace batchguard::backup

BATCHGUARD_FUNCTION(batchguard_protect_table) {
    pg::require_not_null(fcinfo, 0, "source");
    pg::require_not_null(fcinfo, 2, "include_children");
    const Oid source = PG_GETARG_OID(0);
    const bool include_children = PG_GETARG_BOOL(2);
    pg::pg_call([] { PreventCommandIfReadOnly("protect_table()"); });
    std::optional<Datum> retention;
    if (!PG_ARGISNULL(1)) retention = PG_GETARG_DATUM(1);
    if (retention) {
        pg::SpiSession spi;
        pg::Rows r = spi.execute(
            check_retention,
            {pg::Arg::of(*retention), pg::Arg::of(Float8GetDatum(cfg::max_backup_retention_s))});
        if (!r.boolean(0, 1).value())
            throw Error(sqlstate::kInvalidParameterValue, "retention must be positive");
        if (!r.boolean(0, 2).value())
            throw Error(sqlstate::kInvalidParameterValue,
                        "retention exceeds batchguard.max_backup_retention",
                        "The longest retention is " + std::to_string(cfg::max_backup_retention_s) +
                            " seconds.",
                        "Keep a backup longer with a legal hold (hold_backup), which has no "
                        "limit.");
    }
    std::vector<Oid> covered, before;
    {
        pg::SpiSession spi(pg::SpiSession::Access::kReadWrite, pg::SpiSession::Identity::kAsCaller);
        for (const CoveredRelation& r : covered_relations(spi, source, include_children))
            covered.push_back(r.relid);
    }
    {
        pg::SpiSession spi;
        before = oids_of(spi.execute(old_protection, {pg::Arg::of(ObjectIdGetDatum(source))}), 1);
        spi.execute(save_protection,
                    {pg::Arg::of(ObjectIdGetDatum(source)), pg::Arg::text(pg::current_owner()),
                     retention ? pg::Arg::of(*retention) : pg::Arg::null(),
                     pg::Arg::boolean(include_children), pg::Arg::of(oid_array(covered))});
    }
    sync_triggers(every_covered(), before);
    PG_RETURN_VOID();
}

BATCHGUARD_FUNCTION(batchguard_unprotect_table) {
    pg::require_not_null(fcinfo, 0, "source");
    const Oid source = PG_GETARG_OID(0);
    pg::pg_call([] { PreventCommandIfReadOnly("unprotect_table()"); });
    {
        pg::SpiSession spi(pg::SpiSession::Access::kReadOnly, pg::SpiSession::Identity::kAsCaller);
        (void)describe(spi, source, true, "");
    }
    std::vector<Oid> before;
    {
        pg::SpiSession spi;
        pg::Rows r = spi.execute(old_protection, {pg::Arg::of(ObjectIdGetDatum(source))});
        if (r.empty()) PG_RETURN_BOOL(false);
        before = oids_of(r, 1);
        spi.execute(remove_protection, {pg::Arg::of(ObjectIdGetDatum(source))});
    }
    sync_triggers(every_covered(), before);
    PG_RETURN_BOOL(true);
}

BATCHGUARD_FUNCTION(batchguard_last_backup_id) {
    std::optional<std::string> id;
    if (pending != nullptr && pending->total_rows() > 0)
        id = pending->backup_id;
    else if (!deleted_in_transaction)
        id = last_committed;
    if (!id) PG_RETURN_NULL();
    return pg::pg_call([&] { return DirectFunctionCall1(uuid_in, CStringGetDatum(id->c_str())); });
}

BATCHGUARD_FUNCTION(batchguard_protected_delete) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        throw Error(sqlstate::kObjectNotInPrerequisiteState,
                    "batchguard._protected_delete() must be called as a trigger");
    auto* data = reinterpret_cast<TriggerData*>(fcinfo->context);
    const bool statement =
        TRIGGER_FIRED_AFTER(data->tg_event) && TRIGGER_FIRED_FOR_STATEMENT(data->tg_event);
    if (statement && TRIGGER_FIRED_BY_DELETE(data->tg_event) && data->tg_oldtable != nullptr)
        collect(data->tg_relation, data->tg_oldtable);
    else if (statement && TRIGGER_FIRED_BY_UPDATE(data->tg_event) && data->tg_oldtable != nullptr &&
             data->tg_newtable != nullptr)
        collect_changed(data);
    else
        throw Error(sqlstate::kObjectNotInPrerequisiteState,
                    "batchguard._protected_delete() must be an AFTER DELETE statement trigger "
                    "with an OLD TABLE, or an AFTER UPDATE one with both transition tables",
                    {}, "Use batchguard.protect_table().");
    return PointerGetDatum(nullptr);
}

BATCHGUARD_FUNCTION(batchguard_protected_truncate) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        throw Error(sqlstate::kObjectNotInPrerequisiteState,
                    "batchguard._protected_truncate() must be called as a trigger");
    auto* data = reinterpret_cast<TriggerData*>(fcinfo->context);
    const Oid relid = RelationGetRelid(data->tg_relation);
    const std::string name = relation_name(relid);
    const std::string source = protecting_table(relid);
    throw Error(sqlstate::kObjectNotInPrerequisiteState, "cannot truncate protected table " + name,
                source == name ? "TRUNCATE would remove its rows without a backup."
                               : "TRUNCATE would remove its rows without a backup; the "
                                 "protection of table " +
                                     source + " covers it.",
                "Delete the rows with DELETE, or with batchguard.purge_with_backup() or "
                "batchguard.delete_with_backup() for large deletes; or remove the protection "
                "first: SELECT batchguard.unprotect_table(" +
                    sql_literal(source) + ");");
}

namespace {

pg::Statement dropped_protected{
    "SELECT d.object_type, d.object_identity,"
    "       coalesce((SELECT s.object_identity"
    "                   FROM pg_catalog.pg_event_trigger_dropped_objects() s"
    "                  WHERE s.objid OPERATOR(pg_catalog.=) p.source::pg_catalog.oid"
    "                    AND s.classid OPERATOR(pg_catalog.=)"
    "                        'pg_catalog.pg_class'::pg_catalog.regclass),"
    "                p.source::pg_catalog.text),"
    "       d.objid OPERATOR(pg_catalog.=) p.source::pg_catalog.oid"
    "  FROM pg_catalog.pg_event_trigger_dropped_objects() d"
    "  JOIN batchguard.protections p"
    "    ON (d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
    "        AND d.objsubid OPERATOR(pg_catalog.=) 0"
    "        AND d.objid OPERATOR(pg_catalog.=) ANY (p.covered::pg_catalog.oid[]))"
    "    OR (d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::pg_catalog.regclass"
    "        AND d.address_names[3] OPERATOR(pg_catalog.=) ANY ($1)"
    "        AND pg_catalog.to_regclass(pg_catalog.quote_ident(d.address_names[1])"
    "              OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||)"
    "              pg_catalog.quote_ident(d.address_names[2]))::pg_catalog.oid"
    "            OPERATOR(pg_catalog.=) ANY (p.covered::pg_catalog.oid[]))"
    " ORDER BY d.classid OPERATOR(pg_catalog.<>) 'pg_catalog.pg_class'::pg_catalog.regclass"
    " LIMIT 1",
    {TEXTARRAYOID}};

}  // namespace

BATCHGUARD_FUNCTION(batchguard_protected_drop) {
    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
        throw Error(sqlstate::kObjectNotInPrerequisiteState,
                    "batchguard._protected_drop() must be called as an event trigger");
    if (dropping_own_triggers) PG_RETURN_VOID();
    // DROP EXTENSION drops the protections table too: nothing is protected any more.
    const bool installed = pg::pg_call([] {
        const Oid schema = get_namespace_oid("batchguard", true);
        return OidIsValid(schema) && OidIsValid(get_relname_relid("protections", schema));
    });
    if (!installed) PG_RETURN_VOID();
    pg::SpiSession spi;
    pg::Rows r = spi.execute(
        dropped_protected, {pg::Arg::of(pg::make_text_array({std::string_view(kDeleteTrigger),
                                                             kTruncateTrigger, kChangeTrigger}))});
    if (r.empty()) PG_RETURN_VOID();
    const std::string type = r.text(0, 1).value();
    const std::string identity = r.text(0, 2).value();
    const std::string source = r.text(0, 3).value();
    const std::string hint = "Remove the protection first: SELECT batchguard.unprotect_table(" +
                             sql_literal(source) + ");";
    if (type == "trigger")
        throw Error(sqlstate::kObjectNotInPrerequisiteState,
                    "cannot drop trigger " + identity + ": it protects table " + source, {}, hint);
    throw Error(sqlstate::kObjectNotInPrerequisiteState,
                r.boolean(0, 4).value() ? "cannot drop protected table " + identity
                                        : "cannot drop table " + identity +
                                              ": the protection of table " + source + " covers it",
                "DROP would remove its rows without a backup.",
                hint +
                    " To keep a backup of the rows, delete them with "
                    "batchguard.purge_with_backup() before.");
}
