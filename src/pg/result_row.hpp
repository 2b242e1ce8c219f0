// Composite results built by column name against the row type the database actually has.
// A database that has not run ALTER EXTENSION ... UPDATE yet still has the older version's
// types: columns this library knows but the installed type lacks are skipped, columns it
// does not set are NULL. So no result depends on a hard-coded column list of one version.
#pragma once
#include "pg/postgres.hpp"

#include <vector>

namespace batchguard::pg {

class ResultRow {
  public:
    // `desc` is the installed result type (get_call_result_type, rsinfo->setDesc).
    explicit ResultRow(TupleDesc desc);

    // The position of `column` in the installed type, or -1 when it has no such column.
    // Resolve positions once when a function returns many rows.
    int position(const char* column) const;

    // Sets a column (by position from position(), or by name); -1 / unknown is a no-op.
    void set(int position, Datum value);
    void set(const char* column, Datum value) { set(position(column), value); }
    void set_null(int position);
    void set_null(const char* column) { set_null(position(column)); }
    // Every column NULL again (before the next row of a set).
    void clear();

    TupleDesc desc() const { return desc_; }
    Datum* values() { return values_.data(); }
    bool* nulls() { return reinterpret_cast<bool*>(nulls_.data()); }
    // heap_form_tuple in the current memory context, under pg_call (so never call it
    // inside another pg_call).
    HeapTuple form();

  private:
    TupleDesc desc_;
    std::vector<Datum> values_;
    std::vector<char> nulls_;  // bool, but not std::vector<bool>
};

}  // namespace batchguard::pg
