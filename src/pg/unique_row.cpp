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
            if (!OidIsValid(key_collations[i]) ||
                !get_collation_isdeterministic(key_collations[i]))
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

bool UniqueRowReader::read_row(HeapTuple tuple, TupleDesc desc, const std::vector<Datum>& keys,
                               const std::vector<std::string_view>& key_bytes,
                               std::vector<Datum>& all_values, bool* all_nulls,
                               std::vector<Datum>& values, std::vector<char>& nulls) const {
    // Runs inside pg_call: no C++ exceptions here. One pass over the tuple: the columns
    // after the first text one have no cached offsets, so heap_getattr would walk the
    // tuple again for each of them.
    if (desc->natts != natts_ || all_values.size() != static_cast<std::size_t>(natts_)) {
        // Not expected (a change of the table resets the reader): the general path.
        return read_row_by_attribute(tuple, desc, keys, values, nulls);
    }
    heap_deform_tuple(tuple, desc, all_values.data(), all_nulls);
    for (std::size_t i = 0; i < keys.size(); ++i) {
        const int a = key_attnums_[i] - 1;
        if (all_nulls[a]) return false;
        const Datum value = all_values[a];
        if (keys_compare_bytes_ && !VARATT_IS_EXTERNAL(DatumGetPointer(value)) &&
            !VARATT_IS_COMPRESSED(DatumGetPointer(value))) {
            const char* data = VARDATA_ANY(DatumGetPointer(value));
            const std::size_t size = VARSIZE_ANY_EXHDR(DatumGetPointer(value));
            if (size != key_bytes[i].size() ||
                (size != 0 && std::memcmp(data, key_bytes[i].data(), size) != 0))
                return false;
        } else {
            // keys[i] is unset when only byte comparisons were expected.
            const Datum key = keys_compare_bytes_
                                  ? PointerGetDatum(cstring_to_text_with_len(
                                        key_bytes[i].data(), static_cast<int>(key_bytes[i].size())))
                                  : keys[i];
            if (!DatumGetBool(DirectFunctionCall2Coll(texteq, key_collations_[i], value, key)))
                return false;
        }
    }
    for (std::size_t i = 0; i < attnums_.size(); ++i) {
        const int a = attnums_[i] - 1;
        nulls[i] = all_nulls[a];
        if (!all_nulls[a]) {
            Form_pg_attribute attribute = TupleDescAttr(desc, a);
            values[i] = datumCopy(all_values[a], attribute->attbyval, attribute->attlen);
        }
    }
    return true;
}

bool UniqueRowReader::read_row_by_attribute(HeapTuple tuple, TupleDesc desc,
                                            const std::vector<Datum>& keys,
                                            std::vector<Datum>& values,
                                            std::vector<char>& nulls) const {
    for (std::size_t i = 0; i < keys.size(); ++i) {
        bool is_null = false;
        const Datum value = heap_getattr(tuple, key_attnums_[i], desc, &is_null);
        if (is_null ||
            !DatumGetBool(DirectFunctionCall2Coll(texteq, key_collations_[i], value, keys[i])))
            return false;
    }
    for (std::size_t i = 0; i < attnums_.size(); ++i) {
        bool is_null = false;
        const Datum value = heap_getattr(tuple, attnums_[i], desc, &is_null);
        nulls[i] = is_null;
        if (!is_null) {
            Form_pg_attribute attribute = TupleDescAttr(desc, attnums_[i] - 1);
            values[i] = datumCopy(value, attribute->attbyval, attribute->attlen);
        }
    }
    return true;
}

std::optional<std::vector<std::optional<Datum>>> UniqueRowReader::find(
    const SpiSession& spi, const std::vector<std::string_view>& keys) {
    if (!resolved_) resolve();
    if (keys.size() != key_attnums_.size())
        throw Error(sqlstate::kInternalError, "wrong number of keys for a unique row lookup");
    std::string address_key;
    for (std::string_view key : keys) {
        address_key.append(key);
        address_key.push_back('\0');
    }
    const auto remembered = addresses_.find(address_key);
    ItemPointerData address;
    ItemPointerSetInvalid(&address);
    const bool try_address = remembered != addresses_.end();
    if (try_address) address = remembered->second;

    std::vector<Datum> key_values(keys.size());
    std::vector<Datum> values(attnums_.size());
    std::vector<char> nulls(attnums_.size());
    std::vector<ScanKeyData> scan_keys(keys.size());  // allocated here: never inside pg_call
    std::vector<Datum> all_values(static_cast<std::size_t>(natts_));
    std::unique_ptr<bool[]> all_nulls_buffer(new bool[static_cast<std::size_t>(natts_)]);
    bool* all_nulls = all_nulls_buffer.get();
    const bool read_only = spi.read_only();
    const bool found = pg_call([&] {
        // As text datums: for the index scan and for comparisons under a collation.
        bool have_key_values = false;
        auto make_key_values = [&] {
            if (have_key_values) return;
            for (std::size_t i = 0; i < keys.size(); ++i)
                key_values[i] = PointerGetDatum(
                    cstring_to_text_with_len(keys[i].data(), static_cast<int>(keys[i].size())));
            have_key_values = true;
        };
        if (!keys_compare_bytes_) make_key_values();
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
                hit = read_row(&tuple, desc, key_values, keys, all_values, all_nulls, values,
                               nulls);
                ReleaseBuffer(buffer);
            }
        }
        if (!hit) {
            make_key_values();
            ItemPointerSetInvalid(&address);
            for (std::size_t i = 0; i < keys.size(); ++i)
                ScanKeyEntryInitialize(&scan_keys[i], 0, key_attnums_[i], BTEqualStrategyNumber,
                                       InvalidOid, key_collations_[i], F_TEXTEQ, key_values[i]);
            SysScanDesc scan =
                systable_beginscan(table, index_oid_, true, snapshot,
                                   static_cast<int>(scan_keys.size()), scan_keys.data());
            HeapTuple tuple = systable_getnext(scan);
            if (HeapTupleIsValid(tuple) && read_row(tuple, desc, key_values, keys, all_values,
                                                     all_nulls, values, nulls)) {
                hit = true;
                address = tuple->t_self;
            }
            systable_endscan(scan);
        }
        table_close(table, NoLock);  // like a statement's lock: kept until the transaction ends
        UnregisterSnapshot(snapshot);
        return hit;
    });
    if (!found) {
        if (try_address) addresses_.erase(address_key);
        return std::nullopt;
    }
    if (addresses_.size() >= kMaxAddresses) addresses_.clear();
    addresses_[address_key] = address;
    std::vector<std::optional<Datum>> row(attnums_.size());
    for (std::size_t i = 0; i < attnums_.size(); ++i)
        if (!nulls[i]) row[i] = values[i];
    return row;
}

}  // namespace batchguard::pg
