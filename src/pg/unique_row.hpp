// A row of one of the extension's tables found by equality on every column of a unique
// index, read straight from the index and the heap: no planner, no executor, no SPI. For
// lookups on the per-item paths, where preparing and running a statement costs several
// times what the probe does (docs/performance.md).
#pragma once
#include "pg/spi.hpp"

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
    // see it (its own earlier writes included); nullopt when there is none. Values are
    // copied into the current memory context; a NULL is nullopt.
    std::optional<std::vector<std::optional<Datum>>> find(
        const SpiSession& spi, const std::vector<std::string_view>& keys);

    // Forgets resolved names and row addresses (relcache invalidation).
    void forget() {
        resolved_ = false;
        addresses_.clear();
    }

  private:
    void resolve();
    // Copies the wanted columns of a visible tuple; false (and nothing copied) when its key
    // columns differ from `keys`.
    // `all_values`/`all_nulls` are scratch space for every column of the table.
    bool read_row(HeapTuple tuple, TupleDesc desc, const std::vector<Datum>& keys,
                  const std::vector<std::string_view>& key_bytes, std::vector<Datum>& all_values,
                  bool* all_nulls, std::vector<Datum>& values, std::vector<char>& nulls) const;
    // The same, column by column (a descriptor other than the one resolved).
    bool read_row_by_attribute(HeapTuple tuple, TupleDesc desc, const std::vector<Datum>& keys,
                               std::vector<Datum>& values, std::vector<char>& nulls) const;

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
};

}  // namespace batchguard::pg
