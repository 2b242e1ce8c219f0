#include "pg/unique_row.hpp"

#include "pg/guard.hpp"

#include <cstring>
#include <memory>

extern "C" {
#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "storage/bufmgr.h"
#include "utils/snapmgr.h"
}

namespace batchguard::pg {

namespace {

std::vector<UniqueRowReader*>& readers() {
    static std::vector<UniqueRowReader*> all;
    return all;
}

bool callback_registered = false;

// Rows remembered per reader: a session working with more jobs than this starts over.
constexpr std::size_t kMaxAddresses = 256;

// Any change of a relation may be a change of ours (a dropped and recreated extension
// gets new oids): names are resolved again on next use, which is cheap and rare.
void on_relcache_invalidation(Datum, Oid) {
    for (UniqueRowReader* reader : readers()) reader->forget();
}

}  // namespace

UniqueRowReader::UniqueRowReader(const char* table, const char* index,
                                 std::vector<const char*> key_columns,
                                 std::vector<const char*> columns)
    : table_(table),
      index_(index),
      key_column_names_(std::move(key_columns)),
      column_names_(std::move(columns)) {
    readers().push_back(this);
}

void UniqueRowReader::resolve() {
    if (!callback_registered) {
        pg_call([] { CacheRegisterRelcacheCallback(on_relcache_invalidation, 0); });
        callback_registered = true;
    }
    std::vector<AttrNumber> key_attnums(key_column_names_.size());
    std::vector<Oid> key_collations(key_column_names_.size());
    std::vector<AttrNumber> attnums(column_names_.size());
    bool keys_compare_bytes = true;
    int natts = 0;
    pg_call([&] {
        const Oid schema = get_namespace_oid("batchguard", false);
        table_oid_ = get_relname_relid(table_, schema);
        index_oid_ = get_relname_relid(index_, schema);
        if (!OidIsValid(table_oid_) || !OidIsValid(index_oid_))
            elog(ERROR, "relation batchguard.%s or its index %s is missing", table_, index_);
        // The keys compare as the index does: its columns, in order, with its collations.
        Relation index = index_open(index_oid_, AccessShareLock);
        if (!index->rd_index->indisunique || IndexRelationGetNumberOfKeyAttributes(index) !=
                                                 static_cast<int>(key_column_names_.size()))
            elog(ERROR, "index batchguard.%s is not the expected unique index", index_);
        for (std::size_t i = 0; i < key_column_names_.size(); ++i) {
            key_attnums[i] = get_attnum(table_oid_, key_column_names_[i]);
            if (index->rd_index->indkey.values[i] != key_attnums[i])
                elog(ERROR, "index batchguard.%s is not the expected unique index", index_);
            key_collations[i] = index->rd_indcollation[i];
            // A deterministic collation's equality is byte equality (texteq's own shortcut).
            if (!OidIsValid(key_collations[i]) || !get_collation_isdeterministic(key_collations[i]))
                keys_compare_bytes = false;
        }
        index_close(index, AccessShareLock);
        Relation table = table_open(table_oid_, AccessShareLock);
        natts = RelationGetDescr(table)->natts;
        table_close(table, AccessShareLock);
        for (std::size_t i = 0; i < column_names_.size(); ++i)
            attnums[i] = get_attnum(table_oid_, column_names_[i]);
        for (AttrNumber a : key_attnums)
            if (a == InvalidAttrNumber)
                elog(ERROR, "a key column of batchguard.%s is missing", table_);
        for (AttrNumber a : attnums)
            if (a == InvalidAttrNumber) elog(ERROR, "a column of batchguard.%s is missing", table_);
    });
    key_attnums_ = std::move(key_attnums);
    key_collations_ = std::move(key_collations);
    attnums_ = std::move(attnums);
    keys_compare_bytes_ = keys_compare_bytes;
    natts_ = natts;
    resolved_ = true;
}

bool UniqueRowReader::key_matches(std::size_t i, Datum value, std::string_view key) const {
    // Runs inside pg_call. A deterministic collation's equality is byte equality.
    if (keys_compare_bytes_ && !VARATT_IS_EXTERNAL(DatumGetPointer(value)) &&
        !VARATT_IS_COMPRESSED(DatumGetPointer(value))) {
        const std::size_t size = VARSIZE_ANY_EXHDR(DatumGetPointer(value));
        return size == key.size() && (size == 0 || std::memcmp(VARDATA_ANY(DatumGetPointer(value)),
                                                               key.data(), size) == 0);
    }
    const Datum key_text =
        PointerGetDatum(cstring_to_text_with_len(key.data(), static_cast<int>(key.size())));
    return DatumGetBool(DirectFunctionCall2Coll(texteq, key_collations_[i], value, key_text));
}

bool UniqueRowReader::read_row(HeapTuple tuple, TupleDesc desc, const std::string_view* keys,
                               bool* all_nulls) {
    // Runs inside pg_call: no C++ exceptions here.
    if (desc->natts == natts_ && all_values_.size() == static_cast<std::size_t>(natts_)) {
        // One pass over the tuple: the columns after the first text one have no cached
        // offsets, so heap_getattr would walk the tuple again for each of them.
        heap_deform_tuple(tuple, desc, all_values_.data(), all_nulls);
        for (std::size_t i = 0; i < key_attnums_.size(); ++i) {
            const int a = key_attnums_[i] - 1;
            if (all_nulls[a] || !key_matches(i, all_values_[a], keys[i])) return false;
        }
        for (std::size_t i = 0; i < attnums_.size(); ++i) {
            const int a = attnums_[i] - 1;
            nulls_[i] = all_nulls[a];
            if (!all_nulls[a]) {
                Form_pg_attribute attribute = TupleDescAttr(desc, a);
                values_[i] = datumCopy(all_values_[a], attribute->attbyval, attribute->attlen);
            }
        }
        return true;
    }
    // Another descriptor than the one resolved (not expected: a change of the table
    // resets the reader): column by column.
    for (std::size_t i = 0; i < key_attnums_.size(); ++i) {
        bool is_null = false;
        const Datum value = heap_getattr(tuple, key_attnums_[i], desc, &is_null);
        if (is_null || !key_matches(i, value, keys[i])) return false;
    }
    for (std::size_t i = 0; i < attnums_.size(); ++i) {
        bool is_null = false;
        const Datum value = heap_getattr(tuple, attnums_[i], desc, &is_null);
        nulls_[i] = is_null;
        if (!is_null) {
            Form_pg_attribute attribute = TupleDescAttr(desc, attnums_[i] - 1);
            values_[i] = datumCopy(value, attribute->attbyval, attribute->attlen);
        }
    }
    return true;
}

const std::vector<std::optional<Datum>>* UniqueRowReader::find(
    const SpiSession& spi, std::initializer_list<std::string_view> key_list) {
    if (!resolved_) resolve();
    if (key_list.size() != key_attnums_.size())
        throw Error(sqlstate::kInternalError, "wrong number of keys for a unique row lookup");
    const std::string_view* keys = key_list.begin();
    const std::size_t key_count = key_list.size();
    address_key_.clear();
    for (std::string_view key : key_list) {
        address_key_.append(key);
        address_key_.push_back('\0');
    }
    const auto remembered = addresses_.find(address_key_);
    ItemPointerData address;
    ItemPointerSetInvalid(&address);
    const bool try_address = remembered != addresses_.end();
    if (try_address) address = remembered->second;

    // Scratch space kept from call to call (this runs for every per-item call), sized
    // here: never inside pg_call.
    key_values_.resize(key_count);
    values_.resize(attnums_.size());
    nulls_.resize(attnums_.size());
    scan_keys_.resize(key_count);
    all_values_.resize(static_cast<std::size_t>(natts_));
    if (all_nulls_size_ < static_cast<std::size_t>(natts_)) {
        all_nulls_.reset(new bool[static_cast<std::size_t>(natts_)]);
        all_nulls_size_ = static_cast<std::size_t>(natts_);
    }
    bool* all_nulls = all_nulls_.get();
    const bool read_only = spi.read_only();
    const ItemPointerData remembered_address = address;
    const bool found = pg_call([&] {
        // The snapshot an SPI statement would take: the caller's in a read-only session,
        // otherwise a new one that also sees this transaction's earlier writes.
        if (!read_only) CommandCounterIncrement();
        Snapshot snapshot =
            RegisterSnapshot(read_only ? GetActiveSnapshot() : GetTransactionSnapshot());
        Relation table = table_open(table_oid_, AccessShareLock);
        TupleDesc desc = RelationGetDescr(table);
        bool hit = false;
        // The remembered address first. The block may be gone (VACUUM truncates empty
        // pages at the end of the table), the tuple dead or another row's.
        if (ItemPointerIsValid(&address) &&
            ItemPointerGetBlockNumber(&address) < RelationGetNumberOfBlocks(table)) {
            HeapTupleData tuple;
            tuple.t_self = address;
            Buffer buffer = InvalidBuffer;
            if (heap_fetch(table, snapshot, &tuple, &buffer, false)) {
                hit = read_row(&tuple, desc, keys, all_nulls);
                ReleaseBuffer(buffer);
            }
        }
        if (!hit) {
            ItemPointerSetInvalid(&address);
            for (std::size_t i = 0; i < key_count; ++i) {
                key_values_[i] = PointerGetDatum(
                    cstring_to_text_with_len(keys[i].data(), static_cast<int>(keys[i].size())));
                ScanKeyEntryInitialize(&scan_keys_[i], 0, key_attnums_[i], BTEqualStrategyNumber,
                                       InvalidOid, key_collations_[i], F_TEXTEQ, key_values_[i]);
            }
            SysScanDesc scan = systable_beginscan(table, index_oid_, true, snapshot,
                                                  static_cast<int>(key_count), scan_keys_.data());
            HeapTuple tuple = systable_getnext(scan);
            if (HeapTupleIsValid(tuple) && read_row(tuple, desc, keys, all_nulls)) {
                hit = true;
                address = tuple->t_self;
            }
            systable_endscan(scan);
        }
        table_close(table, NoLock);  // like a statement's lock: kept until the transaction ends
        UnregisterSnapshot(snapshot);
        return hit;
    });
    // An invalidation processed inside (when the table was locked) may have cleared the
    // remembered addresses: the key is looked up again rather than through `remembered`.
    if (!found) {
        if (try_address) addresses_.erase(address_key_);
        return nullptr;
    }
    ItemPointerData previous = remembered_address;
    const bool same_place = try_address && ItemPointerEquals(&address, &previous);
    if (!same_place || addresses_.empty()) {
        if (addresses_.size() >= kMaxAddresses) addresses_.clear();
        addresses_[address_key_] = address;
    }
    row_.assign(attnums_.size(), std::nullopt);
    for (std::size_t i = 0; i < attnums_.size(); ++i)
        if (!nulls_[i]) row_[i] = values_[i];
    return &row_;
}

}  // namespace batchguard::pg
