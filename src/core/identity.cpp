#include "core/identity.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <cctype>

namespace batchguard {

std::string mapped_owner(std::string_view role_name, std::string_view setting,
                         std::string_view identity) {
    if (identity.empty())
        throw Error(sqlstate::kInvalidAuthorization,
                    "no end-user identity for role \"" + std::string(role_name) + "\"",
                    "Role \"" + std::string(role_name) + "\" is mapped to the setting \"" +
                        std::string(setting) + "\", which gives no identity in this transaction.",
                    "Set it for every request (PostgREST does), or unmap the role with "
                    "batchguard.unmap_identity().");
    if (identity.size() > kMaxIdentityBytes)
        throw Error(sqlstate::kInvalidAuthorization,
                    "end-user identity of role \"" + std::string(role_name) + "\" is too long (" +
                        std::to_string(identity.size()) + " bytes)",
                    "The maximum is " + std::to_string(kMaxIdentityBytes) + " bytes.");
    std::string owner;
    owner.reserve(role_name.size() + 1 + identity.size());
    owner.append(role_name).push_back(kIdentitySeparator);
    owner.append(identity);
    return owner;
}

void validate_identity_setting(std::string_view setting) {
    const bool valid = !setting.empty() && setting.size() <= 200 &&
                       std::all_of(setting.begin(), setting.end(), [](unsigned char c) {
                           return std::isalnum(c) || c == '_' || c == '.';
                       });
    if (!valid)
        throw Error(sqlstate::kInvalidParameterValue,
                    "\"" + std::string(setting) + "\" is not a configuration parameter name", {},
                    "Use a name such as request.jwt.claims or myapp.user_id.");
}

void validate_identity_json_key(std::string_view json_key) {
    if (json_key.empty() || json_key.size() > 200)
        throw Error(sqlstate::kInvalidParameterValue, "json_key must be between 1 and 200 bytes");
}

}  // namespace batchguard
