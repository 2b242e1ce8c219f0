// UTF-8 validation of the text a backup file holds (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF).
#pragma once
#include "core/pure.hpp"

#include <cstddef>
#include <string_view>

namespace batchguard {

// The offset of the first byte that does not start a valid sequence, or npos.
std::size_t find_invalid_utf8(std::string_view text);

}  // namespace batchguard
