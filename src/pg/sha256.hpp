// SHA-256 for the core's Hasher interface, with PostgreSQL's cryptohash.
#pragma once
#include "core/hasher.hpp"

#include <memory>

namespace batchguard::pg {

// A SHA-256 hasher. Its PostgreSQL context belongs to a resource owner of the extension's
// that no transaction end releases, so it may live across calls (a set-returning scan)
// and is freed exactly once, by the hasher's destructor.
std::unique_ptr<Hasher> make_sha256();

}  // namespace batchguard::pg
