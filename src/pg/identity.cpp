#include "pg/identity.hpp"

#include "core/identity.hpp"
#include "pg/guard.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "common/hashfn.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/inval.h"
}

#include <optional>
#include <unordered_map>

namespace batchguard::pg {

namespace {
// locktag_field4 of our job locks; pg_advisory_lock() uses 1 and 2.
constexpr uint16 kJobLockSpace = 0x4247;  // "BG"
}  // namespace

namespace {

struct Mapping {
    std::string setting;
    std::optional<std::string> json_key;
};

// Per-backend cache of batchguard.identity_map, by role (nullopt: the role is not mapped).
// map_identity() and unmap_identity() send a relcache invalidation of the table at commit,
// which reaches every backend and clears it.
std::unordered_map<Oid, std::optional<Mapping>> mapping_cache;
Oid identity_map_relid = InvalidOid;
bool invalidation_registered = false;

// The last mapped identity resolved: row security calls current_owner() for every row,
// so the setting's JSON is parsed again only when its value changes.
struct ResolvedOwner {
    Oid role;
    std::string raw_setting;
    std::string owner;
};
std::optional<ResolvedOwner> last_resolved;

void on_relcache_invalidation(Datum, Oid relid) {
    if (relid == InvalidOid || relid == identity_map_relid) invalidate_identity_cache();
}

const std::optional<Mapping>& mapping_for(Oid role) {
    if (auto found = mapping_cache.find(role); found != mapping_cache.end()) return found->second;
    static Statement find_mapping{
        "SELECT setting, json_key FROM batchguard.identity_map WHERE role::oid = $1", {OIDOID}};
    if (!invalidation_registered) {
        pg_call([] { CacheRegisterRelcacheCallback(on_relcache_invalidation, 0); });
        invalidation_registered = true;
    }
    std::optional<Mapping> mapping;
    {
        SpiSession spi(SpiSession::Access::kReadOnly);
        identity_map_relid = pg_call([] {
            return get_relname_relid("identity_map", get_namespace_oid("batchguard", false));
        });
        Rows rows = spi.execute(find_mapping, {Arg::of(ObjectIdGetDatum(role))});
        if (!rows.empty()) mapping = Mapping{rows.text(0, 1).value(), rows.text(0, 2)};
    }
    return mapping_cache.emplace(role, std::move(mapping)).first->second;
}

std::string capitalized(std::string text) {
    if (!text.empty() && text[0] >= 'a' && text[0] <= 'z')
        text[0] = static_cast<char>(text[0] - 'a' + 'A');
    return text;
}

// The identity under json_key of the setting's JSON (empty when absent). Claims that are
// not JSON get an error naming the setting, not only the JSON parser's complaint.
std::string json_field(const std::string& setting, const std::string& json,
                       const std::string& key) {
    static Statement extract{"SELECT $1::jsonb ->> $2", {TEXTOID, TEXTOID}};
    SpiSession spi(SpiSession::Access::kReadOnly);
    try {
        return spi.execute(extract, {Arg::text(json), Arg::text(key)}).text(0, 1).value_or("");
    } catch (const PgError& e) {
        if (e.data()->sqlerrcode != ERRCODE_INVALID_TEXT_REPRESENTATION) throw;
        throw Error(sqlstate::kInvalidTextRepresentation,
                    "setting \"" + setting + "\" is not valid JSON",
                    capitalized(e.data()->message != nullptr ? e.data()->message : "") + ".",
                    "The identity of this role is its key \"" + key +
                        "\": set it per transaction, e.g. set_config('" + setting + "', '{\"" +
                        key + "\": \"user-1\"}', true).");
    }
}

std::string role_name_of(Oid role) {
    const char* name = pg_call([&] { return GetUserNameFromId(role, false); });
    return std::string(name);
}

}  // namespace

void invalidate_identity_cache() {
    mapping_cache.clear();
    last_resolved.reset();
}

std::string current_owner() {
    const Oid role = GetUserId();
    const std::optional<Mapping>& mapping = mapping_for(role);
    std::string role_name = role_name_of(role);
    if (!mapping) {
        if (role_name.find(kIdentitySeparator) != std::string::npos)
            throw Error(sqlstate::kInvalidAuthorization,
                        "role name \"" + role_name + "\" contains \"/\"",
                        "Owners named <role>/<id> are the end users of mapped roles: a role named "
                        "so could be mistaken for one of them, now or after an unmap_identity().",
                        "Rename the role.");
        return role_name;
    }
    const Mapping m = *mapping;  // a copy: the cache may be invalidated by the calls below
    const char* raw = pg_call([&] { return GetConfigOption(m.setting.c_str(), true, false); });
    std::string raw_setting = raw != nullptr ? raw : "";
    if (last_resolved && last_resolved->role == role && last_resolved->raw_setting == raw_setting)
        return last_resolved->owner;
    const std::string identity = m.json_key && !raw_setting.empty()
                                     ? json_field(m.setting, raw_setting, *m.json_key)
                                     : raw_setting;
    std::string owner = mapped_owner(role_name, m.setting, identity);
    last_resolved = ResolvedOwner{role, std::move(raw_setting), owner};
    return owner;
}

bool current_user_is_admin() {
    return pg_call([] {
        Oid admin = get_role_oid(kAdminRole, true);
        return OidIsValid(admin) && has_privs_of_role(GetUserId(), admin);
    });
}

void lock_job(std::string_view owner, std::string_view job_id, JobLockMode mode) {
    std::string key;
    key.reserve(owner.size() + job_id.size() + 1);
    key.append(owner).push_back('\0');
    key.append(job_id);
    const uint64 hash = hash_bytes_extended(reinterpret_cast<const unsigned char*>(key.data()),
                                            static_cast<int>(key.size()), 0);
    pg_call([&] {
        LOCKTAG tag;
        SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, static_cast<uint32>(hash >> 32),
                             static_cast<uint32>(hash), kJobLockSpace);
        (void)LockAcquire(&tag, mode == JobLockMode::kShared ? ShareLock : ExclusiveLock, false,
                          false);
    });
}

}  // namespace batchguard::pg
