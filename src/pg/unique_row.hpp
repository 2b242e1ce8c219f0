// A row of one of the extension's tables found by equality on every column of a unique
// index, read straight from the index and the heap: no planner, no executor, no SPI. For
// lookups on the per-item paths, where preparing and running a statement costs several
// times what the probe does (docs/performance.md).
#pragma once
#include "pg/spi.hpp"

extern "C" {
#include "access/skey.h"
}

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace batchguard::pg {

class UniqueRowReader {
  public:
    // `key_columns` (text, in the index's column order) are matched by `index` of
    // batchguard.`table`; `columns` are the ones read. Names are resolved on first use
    // and again after the table or index changes (e.g. the extension was reinstalled).
    UniqueRowReader(const char* table, const char* index, std::vector<const char*> key_columns,
                    std::vector<const char*> columns);

    // The row whose key columns equal `keys`, seen as the next statement of `spi` would
    // see it (its own earlier writes included); nullptr when there is none. Values are
    // copied into the current memory context; a NULL is nullopt.
    // The result stays valid until the next call.
    const std::vector<std::optional<Datum>>* find(const SpiSession& spi,
                                                  std::initializer_list<std::string_view> keys);

    // Forgets resolved names and row addresses (relcache invalidation).
    void forget() {
        resolved_ = false;
        addresses_.clear();
    }

  private:
    void resolve();
    // Copies the wanted columns of a visible tuple into values_/nulls_; false (and nothing
    // copied) when its key columns differ from `keys`.
    bool read_row(HeapTuple tuple, TupleDesc desc, const std::string_view* keys, bool* all_nulls);
    bool key_matches(std::size_t i, Datum value, std::string_view key) const;

    const char* table_;
    const char* index_;
    std::vector<const char*> key_column_names_;
    std::vector<const char*> column_names_;
    bool resolved_ = false;
    Oid table_oid_ = InvalidOid;
    Oid index_oid_ = InvalidOid;
    std::vector<AttrNumber> key_attnums_;
    std::vector<Oid> key_collations_;
    std::vector<AttrNumber> attnums_;
    // Every key's collation is deterministic: equal keys are equal bytes.
    bool keys_compare_bytes_ = false;
    int natts_ = 0;  // columns of the table when resolved
    // Where the row of each key was last found: tried first (a heap fetch instead of an
    // index descent), trusted only when that tuple is visible and has the same keys.
    std::unordered_map<std::string, ItemPointerData> addresses_;
    // Scratch space of find(), kept from call to call.
    std::string address_key_;
    std::vector<Datum> key_values_;
    std::vector<ScanKeyData> scan_keys_;
    std::vector<Datum> all_values_;
    std::unique_ptr<bool[]> all_nulls_;
    std::size_t all_nulls_size_ = 0;
    std::vector<Datum> values_;
    std::vector<char> nulls_;
    std::vector<std::optional<Datum>> row_;
};

}  // namespace batchguard::pg
