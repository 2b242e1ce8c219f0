// Owner identities: a role's name, or "<role>/<identity>" for a role mapped to a trusted
// identity source (map_identity), so an application user never equals a database role.
#pragma once
#include "core/pure.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace batchguard {

inline constexpr char kIdentitySeparator = '/';

// The longest end-user identity: the owner is part of btree keys (with a job id of up to
// kMaxIdBytes), so every accepted identity can be stored.
inline constexpr std::size_t kMaxIdentityBytes = 1024;

// The owner of a mapped role's current end user. Throws Error (28000) when the identity
// is missing or empty: a mapped role never falls back to acting as itself; or longer than
// kMaxIdentityBytes.
std::string mapped_owner(std::string_view role_name, std::string_view setting,
                         std::string_view identity);

// map_identity's arguments: a configuration parameter name (letters, digits, '_', '.'),
// and an optional non-empty JSON key. Throws Error (22023).
void validate_identity_setting(std::string_view setting);
void validate_identity_json_key(std::string_view json_key);

}  // namespace batchguard
