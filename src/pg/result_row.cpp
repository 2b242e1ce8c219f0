#include "pg/result_row.hpp"

#include "pg/guard.hpp"

#include <algorithm>
#include <cstring>

namespace batchguard::pg {

ResultRow::ResultRow(TupleDesc desc)
    : desc_(desc),
      values_(static_cast<std::size_t>(desc->natts), Datum(0)),
      nulls_(static_cast<std::size_t>(desc->natts), 1) {}

int ResultRow::position(const char* column) const {
    for (int i = 0; i < desc_->natts; ++i) {
        const Form_pg_attribute attribute = TupleDescAttr(desc_, i);
        if (!attribute->attisdropped && std::strcmp(NameStr(attribute->attname), column) == 0)
            return i;
    }
    return -1;
}

void ResultRow::set(int position, Datum value) {
    if (position < 0) return;
    values_[static_cast<std::size_t>(position)] = value;
    nulls_[static_cast<std::size_t>(position)] = 0;
}

void ResultRow::set_null(int position) {
    if (position < 0) return;
    values_[static_cast<std::size_t>(position)] = 0;
    nulls_[static_cast<std::size_t>(position)] = 1;
}

void ResultRow::clear() {
    std::fill(values_.begin(), values_.end(), Datum(0));
    std::fill(nulls_.begin(), nulls_.end(), 1);
}

HeapTuple ResultRow::form() {
    return pg_call([&] { return heap_form_tuple(desc_, values(), nulls()); });
}

}  // namespace batchguard::pg
