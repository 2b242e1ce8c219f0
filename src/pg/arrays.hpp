// bigint[] arguments (lease token lists).
#pragma once
#include "pg/postgres.hpp"

#include <cstdint>
#include <optional>
#include <vector>

namespace batchguard::pg {

// Elements of a one-dimensional bigint[]; a NULL element is nullopt.
std::vector<std::optional<std::int64_t>> int8_array_elements(Datum array);

// A bigint[] datum (for passing a token list to SPI).
Datum make_int8_array(const std::vector<std::int64_t>& values);

}  // namespace batchguard::pg
