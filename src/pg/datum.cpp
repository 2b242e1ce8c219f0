#include "pg/datum.hpp"

#include "core/error.hpp"
#include "core/ids.hpp"
#include "pg/guard.hpp"

#include <algorithm>
#include <cstring>
#include <string>

namespace batchguard::pg {

std::optional<std::string_view> text_arg(FunctionCallInfo fcinfo, int n) {
    if (PG_ARGISNULL(n)) return std::nullopt;
    return pg_call([&] {
        text* t = PG_GETARG_TEXT_PP(n);
        return std::string_view(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
    });
}

std::optional<std::int64_t> int8_arg(FunctionCallInfo fcinfo, int n) {
    if (PG_ARGISNULL(n)) return std::nullopt;
    return PG_GETARG_INT64(n);
}

std::optional<std::int32_t> int4_arg(FunctionCallInfo fcinfo, int n) {
    if (PG_ARGISNULL(n)) return std::nullopt;
    return PG_GETARG_INT32(n);
}

std::optional<bool> bool_arg(FunctionCallInfo fcinfo, int n) {
    if (PG_ARGISNULL(n)) return std::nullopt;
    return PG_GETARG_BOOL(n);
}

namespace {

// The elements of a one-dimensional array (each a Datum of the element type) and their
// NULL flags, palloc'd in the call's memory context.
struct ArrayElements {
    Datum* values = nullptr;
    bool* nulls = nullptr;
    int count = 0;
};

ArrayElements deconstruct_1d(Datum array, Oid type, int16 length, bool by_value, char align,
                             const char* dimension_error) {
    ArrayElements e;
    pg_call([&] {
        ArrayType* a = DatumGetArrayTypeP(array);
        if (ARR_NDIM(a) > 1)
            ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR), errmsg("%s", dimension_error)));
        deconstruct_array(a, type, length, by_value, align, &e.values, &e.nulls, &e.count);
    });
    return e;
}

}  // namespace

void require_array_within_limit(Datum array, const char* name) {
    // Only the array's header: a list over the limit is refused without detoasting it
    // whole first (ten million elements take seconds to read).
    const std::int64_t elements = pg_call([&] {
        auto* a = reinterpret_cast<ArrayType*>(
            PG_DETOAST_DATUM_SLICE(array, 0, ARR_OVERHEAD_NONULLS(MAXDIM)));
        const std::int64_t n = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
        if (reinterpret_cast<Pointer>(a) != DatumGetPointer(array)) pfree(a);
        return n;
    });
    validate_array_length(elements, name);
}

std::vector<std::optional<std::string_view>> text_array_elements(Datum array) {
    const ArrayElements e = deconstruct_1d(array, TEXTOID, -1, false, TYPALIGN_INT,
                                           "item arrays must be one-dimensional");
    const int count = e.count;
    std::vector<std::optional<std::string_view>> result;
    result.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        if ((i & 0xFFFF) == 0) check_for_interrupts();
        if (e.nulls[i]) {
            result.emplace_back(std::nullopt);
        } else {
            text* t = reinterpret_cast<text*>(DatumGetPointer(e.values[i]));
            result.emplace_back(std::string_view(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)));
        }
    }
    return result;
}

std::vector<std::string_view> text_array_without_nulls(Datum array, const char* name) {
    const std::vector<std::optional<std::string_view>> elements = text_array_elements(array);
    std::vector<std::string_view> result;
    result.reserve(elements.size());
    for (std::size_t i = 0; i < elements.size(); ++i) {
        if (!elements[i])
            throw Error(sqlstate::kNullValueNotAllowed, std::string(name) +
                                                            " must not contain NULL (element " +
                                                            std::to_string(i + 1) + ")");
        result.push_back(*elements[i]);
    }
    return result;
}

Datum text_datum(std::string_view s) {
    return pg_call([&] {
        return PointerGetDatum(cstring_to_text_with_len(s.data(), static_cast<int>(s.size())));
    });
}

Datum make_text_array(const std::vector<std::string_view>& items) {
    // Every element in one allocation (construct_array copies them into the array):
    // results of half a million items are ordinary for filter_pending_items.
    std::size_t total = 0;
    for (std::string_view item : items) total += INTALIGN(VARHDRSZ + item.size());
    char* buffer = pg_call([&] {
        return static_cast<char*>(
            MemoryContextAllocHuge(CurrentMemoryContext, std::max<std::size_t>(total, 1)));
    });
    std::vector<Datum> datums;
    datums.reserve(items.size());
    char* next = buffer;
    for (std::string_view item : items) {
        if ((datums.size() & 0xFFFF) == 0) check_for_interrupts();
        auto* t = reinterpret_cast<text*>(next);
        SET_VARSIZE(t, VARHDRSZ + item.size());
        std::memcpy(VARDATA(t), item.data(), item.size());
        datums.push_back(PointerGetDatum(t));
        next += INTALIGN(VARHDRSZ + item.size());
    }
    return pg_call([&] {
        ArrayType* array = construct_array(datums.data(), static_cast<int>(datums.size()), TEXTOID,
                                           -1, false, TYPALIGN_INT);
        pfree(buffer);
        return PointerGetDatum(array);
    });
}

std::vector<std::optional<std::int64_t>> int8_array_elements(Datum array) {
    const ArrayElements e =
        deconstruct_1d(array, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
                       "lease token arrays must be one-dimensional");
    const int count = e.count;
    std::vector<std::optional<std::int64_t>> result;
    result.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        if ((i & 0xFFFF) == 0) check_for_interrupts();
        if (e.nulls[i])
            result.emplace_back(std::nullopt);
        else
            result.emplace_back(DatumGetInt64(e.values[i]));
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

void require_not_null(FunctionCallInfo fcinfo, int n, const char* name) {
    if (PG_ARGISNULL(n))
        throw Error(sqlstate::kNullValueNotAllowed, std::string(name) + " must not be NULL");
}

}  // namespace batchguard::pg
