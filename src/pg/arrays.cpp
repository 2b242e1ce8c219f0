#include "pg/arrays.hpp"

#include "pg/guard.hpp"

namespace batchguard::pg {

std::vector<std::optional<std::int64_t>> int8_array_elements(Datum array) {
    Datum* elements = nullptr;
    bool* nulls = nullptr;
    int count = 0;
    pg_call([&] {
        ArrayType* a = DatumGetArrayTypeP(array);
        if (ARR_NDIM(a) > 1)
            ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
                            errmsg("lease token arrays must be one-dimensional")));
        deconstruct_array(a, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elements,
                          &nulls, &count);
    });
    std::vector<std::optional<std::int64_t>> result;
    result.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        if ((i & 0xFFFF) == 0) check_for_interrupts();
        if (nulls[i])
            result.emplace_back(std::nullopt);
        else
            result.emplace_back(DatumGetInt64(elements[i]));
    }
    return result;
}

Datum make_int8_array(const std::vector<std::int64_t>& values) {
    std::vector<Datum> datums;
    datums.reserve(values.size());
    for (std::int64_t v : values) datums.push_back(Int64GetDatum(v));
    return pg_call([&] {
        return PointerGetDatum(construct_array(datums.data(), static_cast<int>(datums.size()),
                                               INT8OID, sizeof(int64), FLOAT8PASSBYVAL,
                                               TYPALIGN_DOUBLE));
    });
}

}  // namespace batchguard::pg
