// Conversions between PostgreSQL datums and C++ values. Pointers into detoasted
// values stay valid for the rest of the SQL call (they live in its memory context).
#pragma once
#include "pg/postgres.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace batchguard::pg {

// The text argument `n`, or nullopt when it is SQL NULL.
std::optional<std::string_view> text_arg(FunctionCallInfo fcinfo, int n);
std::optional<std::int64_t> int8_arg(FunctionCallInfo fcinfo, int n);
std::optional<std::int32_t> int4_arg(FunctionCallInfo fcinfo, int n);
std::optional<bool> bool_arg(FunctionCallInfo fcinfo, int n);

// Throws Error (22023) naming the array argument `name` when it has more elements than one
// call accepts (kMaxArrayElements): checked before the elements are read.
void require_array_within_limit(Datum array, const char* name);

// Elements of a one-dimensional text[]; a NULL element is nullopt.
std::vector<std::optional<std::string_view>> text_array_elements(Datum array);

// Elements of a one-dimensional text[] that must not hold NULL: throws Error (22004)
// naming the argument `name` and the first NULL element.
std::vector<std::string_view> text_array_without_nulls(Datum array, const char* name);

// A text[] datum built from the given strings.
Datum make_text_array(const std::vector<std::string_view>& items);

Datum text_datum(std::string_view s);

// Throws Error (22004) naming the argument when it is NULL.
void require_not_null(FunctionCallInfo fcinfo, int n, const char* name);

// Elements of a one-dimensional bigint[]; a NULL element is nullopt.
std::vector<std::optional<std::int64_t>> int8_array_elements(Datum array);

// A bigint[] datum (for passing a token list to SPI).
Datum make_int8_array(const std::vector<std::int64_t>& values);

}  // namespace batchguard::pg
