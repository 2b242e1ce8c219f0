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
#include <unordered_set>

namespace batchguard::pg {

namespace {
// locktag_field4 of our job locks; pg_advisory_lock() uses 1 and 2.
constexpr uint16 kJobLockSpace = 0x4247;  // "BG"
}  // namespace

namespace {

struct Mapping {
    std::string setting;
    std::optional<std::string> json_key;
    // Claims are trusted only in sessions whose session user is a member of this role
    // (PostgREST's authenticator). InvalidOid: a mapping made by 1.0, trusted in any session.
    Oid session_role = InvalidOid;
};

// Per-backend cache of batchguard.identity_map, by role (nullopt: the role is not mapped).
// map_identity() and unmap_identity() send a relcache invalidation of the table at commit,
// which reaches every backend and clears it.
std::unordered_map<Oid, std::optional<Mapping>> mapping_cache;
Oid identity_map_relid = InvalidOid;
Oid owner_roles_relid = InvalidOid;
bool invalidation_registered = false;
// Mappings made by 1.0 whose use this backend has warned about.
std::unordered_set<Oid> legacy_mappings_warned;

// The last mapped identity resolved: row security calls current_owner() for every row,
// so the setting's JSON is parsed again only when its value changes.
struct ResolvedOwner {
    Oid role;
    std::string raw_setting;
    std::string owner;
};
std::optional<ResolvedOwner> last_resolved;

// How the current role's name stands in batchguard.owner_roles.
enum class Binding {
    kUnknown,  // no owner_roles table (a database at 1.0)
    kAbsent,   // no row yet: the first batch or backup registers one
    kBound,    // the row names this role
    kFreed,    // the row names a role of the same name that left no rows behind
    kRefused,  // the row names another role of this name, whose rows remain
};
struct OwnerBinding {
    std::string role_name;
    Binding binding = Binding::kUnknown;
    Oid bound_to = InvalidOid;
};
std::unordered_map<Oid, OwnerBinding> binding_cache;

void on_relcache_invalidation(Datum, Oid relid) {
    if (relid == InvalidOid || relid == identity_map_relid || relid == owner_roles_relid)
        invalidate_identity_cache();
}

void register_invalidation() {
    if (invalidation_registered) return;
    pg_call([] { CacheRegisterRelcacheCallback(on_relcache_invalidation, 0); });
    invalidation_registered = true;
}

// A copy: any catalog lookup may process invalidations, which clear the cache.
std::optional<Mapping> mapping_for(Oid role) {
    if (auto found = mapping_cache.find(role); found != mapping_cache.end()) return found->second;
    static Statement find_mapping{
        "SELECT setting, json_key, session_role::pg_catalog.oid FROM batchguard.identity_map"
        " WHERE role::pg_catalog.oid = $1",
        {OIDOID}};
    // A database still at 1.0: its identity_map has no session_role.
    static Statement find_mapping_1_0{
        "SELECT setting, json_key, NULL::pg_catalog.oid"
        "  FROM batchguard.identity_map"
        " WHERE role::pg_catalog.oid = $1",
        {OIDOID}};
    register_invalidation();
    std::optional<Mapping> mapping;
    {
        SpiSession spi(SpiSession::Access::kReadOnly);
        identity_map_relid = pg_call([] {
            return get_relname_relid("identity_map", get_namespace_oid("batchguard", false));
        });
        Rows rows =
            spi.execute(extension_column_exists("identity_map", "session_role") ? find_mapping
                                                                                : find_mapping_1_0,
                        {Arg::of(ObjectIdGetDatum(role))});
        if (!rows.empty()) {
            mapping = Mapping{rows.text(0, 1).value(), rows.text(0, 2)};
            if (auto session_role = rows.datum(0, 3))
                mapping->session_role = DatumGetObjectId(*session_role);
        }
    }
    return mapping_cache.emplace(role, std::move(mapping)).first->second;
}

std::string capitalized(std::string text) {
    if (!text.empty() && text[0] >= 'a' && text[0] <= 'z')
        text[0] = static_cast<char>(text[0] - 'a' + 'A');
    return text;
}

std::string role_name_of(Oid role) {
    const char* name = pg_call([&] { return GetUserNameFromId(role, false); });
    return std::string(name);
}

// A SECURITY DEFINER function owned by a mapped role runs as that role for anyone who
// calls it: the claims are trusted only in the sessions the mapping names.
void require_trusted_session(Oid role, const std::string& role_name, const Mapping& mapping) {
    if (!OidIsValid(mapping.session_role)) {
        if (!legacy_mappings_warned.insert(role).second) return;
        const std::string remap =
            "SELECT batchguard.map_identity('" + role_name + "', '" + mapping.setting + "', " +
            (mapping.json_key ? "'" + *mapping.json_key + "'" : std::string("NULL")) +
            ", 'authenticator');";
        // A database still at 1.0 cannot name a session role before it is updated.
        const std::string hint =
            extension_column_exists("identity_map", "session_role")
                ? "Remap it naming the role whose sessions set the claims, e.g. " + remap
                : "Update the extension (ALTER EXTENSION pg_batchguard UPDATE), then remap it "
                  "naming the role whose sessions set the claims, e.g. " +
                      remap;
        pg_call([&] {
            ereport(WARNING,
                    (errmsg("the identity mapping of role \"%s\" trusts claims set in any session",
                            role_name.c_str()),
                     errdetail("It was made by pg_batchguard 1.0: a SECURITY DEFINER function "
                               "owned by the role would trust the claims of whoever calls it."),
                     errhint("%s", hint.c_str())));
        });
        return;
    }
    const Oid session_user = GetSessionUserId();
    if (pg_call([&] { return is_member_of_role(session_user, mapping.session_role); })) return;
    const char* trusted = pg_call([&] { return GetUserNameFromId(mapping.session_role, true); });
    const std::string trusted_name =
        trusted != nullptr
            ? "role \"" + std::string(trusted) + "\""
            : "a role that no longer exists (OID " + std::to_string(mapping.session_role) + ")";
    throw Error(
        sqlstate::kInvalidAuthorization,
        "the end-user identity of role \"" + role_name + "\" is not trusted in this session",
        "Role \"" + role_name +
            "\" is mapped to take its end users' identity only in "
            "sessions of members of " +
            trusted_name + "; this session's user is \"" + role_name_of(session_user) + "\".",
        "Connect as a member of that role (PostgREST's authenticator), or remap the "
        "role with batchguard.map_identity(role, setting, json_key, session_role).");
}

// A role dropped and created again under the same name gets a new OID: the rows of the
// old one stay out of its reach while any remain (adopt_owner hands them over).
OwnerBinding& owner_binding(Oid role, const std::string& role_name) {
    auto found = binding_cache.find(role);
    if (found != binding_cache.end() && found->second.role_name == role_name) return found->second;
    static Statement find_binding{
        "SELECT role::pg_catalog.oid FROM batchguard.owner_roles WHERE role_name = $1", {TEXTOID}};
    static Statement rows_remain{
        "SELECT EXISTS (SELECT FROM batchguard.batches"
        "                WHERE owner = $1 OR pg_catalog.starts_with(owner, $1 || '/'))"
        "    OR EXISTS (SELECT FROM batchguard.backups"
        "                WHERE owner = $1 OR pg_catalog.starts_with(owner, $1 || '/'))"
        "    OR EXISTS (SELECT FROM batchguard.audit"
        "                WHERE owner = $1 OR pg_catalog.starts_with(owner, $1 || '/'))",
        {TEXTOID}};
    register_invalidation();
    OwnerBinding binding{role_name, Binding::kUnknown, InvalidOid};
    owner_roles_relid = pg_call([] {
        const Oid schema = get_namespace_oid("batchguard", true);
        return OidIsValid(schema) ? get_relname_relid("owner_roles", schema) : InvalidOid;
    });
    if (OidIsValid(owner_roles_relid)) {
        SpiSession spi(SpiSession::Access::kReadOnly);
        Rows rows = spi.execute(find_binding, {Arg::text(role_name)});
        if (rows.empty()) {
            binding.binding = Binding::kAbsent;
        } else {
            binding.bound_to = DatumGetObjectId(rows.datum(0, 1).value());
            if (binding.bound_to == role)
                binding.binding = Binding::kBound;
            else
                binding.binding =
                    spi.execute(rows_remain, {Arg::text(role_name)}).boolean(0, 1).value()
                        ? Binding::kRefused
                        : Binding::kFreed;
        }
    }
    return binding_cache.insert_or_assign(role, std::move(binding)).first->second;
}

void require_owner_binding(Oid role, const std::string& role_name) {
    const OwnerBinding& binding = owner_binding(role, role_name);
    if (binding.binding != Binding::kRefused) return;
    throw Error(
        sqlstate::kInvalidAuthorization,
        "role \"" + role_name + "\" is not the role that owns the rows of \"" + role_name + "\"",
        "They belong to a role of the same name that was dropped (OID " +
            std::to_string(binding.bound_to) + "); this role has OID " + std::to_string(role) + ".",
        "If it is the same user, a superuser can hand the rows over with "
        "SELECT batchguard.adopt_owner('" +
            role_name + "');");
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

}  // namespace

void invalidate_identity_cache() {
    mapping_cache.clear();
    binding_cache.clear();
    last_resolved.reset();
}

std::string current_owner() {
    const Oid role = GetUserId();
    // A copy, taken before the catalog lookup of the role's name (which may process
    // invalidations and clear the cache under a reference).
    const std::optional<Mapping> mapping = mapping_for(role);
    std::string role_name = role_name_of(role);
    if (!mapping) {
        if (role_name.find(kIdentitySeparator) != std::string::npos)
            throw Error(sqlstate::kInvalidAuthorization,
                        "role name \"" + role_name + "\" contains \"/\"",
                        "Owners named <role>/<id> are the end users of mapped roles: a role named "
                        "so could be mistaken for one of them, now or after an unmap_identity().",
                        "Rename the role.");
        require_owner_binding(role, role_name);
        return role_name;
    }
    const Mapping& m = *mapping;
    require_trusted_session(role, role_name, m);
    require_owner_binding(role, role_name);
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

void register_owner_role(Oid role) {
    OwnerBinding& binding = owner_binding(role, role_name_of(role));
    if (binding.binding == Binding::kUnknown || binding.binding == Binding::kBound) return;
    // kRefused cannot get here: current_owner() refused the caller before.
    static Statement bind{
        "INSERT INTO batchguard.owner_roles (role_name, role)"
        " VALUES ($1, $2::pg_catalog.regrole) ON CONFLICT (role_name) DO NOTHING",
        {TEXTOID, OIDOID}};
    static Statement rebind{
        "UPDATE batchguard.owner_roles SET role = $2::pg_catalog.regrole,"
        "       created_at = pg_catalog.now()"
        " WHERE role_name = $1 AND role::pg_catalog.oid <> $2",
        {TEXTOID, OIDOID}};
    {
        SpiSession spi;
        spi.execute(binding.binding == Binding::kAbsent ? bind : rebind,
                    {Arg::text(binding.role_name), Arg::of(ObjectIdGetDatum(role))});
    }
    // Every backend, this one included, re-reads the binding once this commits; until then
    // (and after a rollback) this backend keeps registering, which costs one statement.
    pg_call([] { CacheInvalidateRelcacheByRelid(owner_roles_relid); });
}

void broadcast_owner_role_change() {
    pg_call([] {
        const Oid schema = get_namespace_oid("batchguard", true);
        const Oid relid =
            OidIsValid(schema) ? get_relname_relid("owner_roles", schema) : InvalidOid;
        if (OidIsValid(relid)) CacheInvalidateRelcacheByRelid(relid);
    });
    invalidate_identity_cache();
}

bool current_user_is_admin() {
    return pg_call([] {
        Oid admin = get_role_oid(kAdminRole, true);
        return OidIsValid(admin) && has_privs_of_role(GetUserId(), admin);
    });
}

namespace {

LOCKTAG job_lock_tag(std::string_view owner, std::string_view job_id) {
    std::string key;
    key.reserve(owner.size() + job_id.size() + 1);
    key.append(owner).push_back('\0');
    key.append(job_id);
    const uint64 hash = hash_bytes_extended(reinterpret_cast<const unsigned char*>(key.data()),
                                            static_cast<int>(key.size()), 0);
    LOCKTAG tag;
    SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, static_cast<uint32>(hash >> 32),
                         static_cast<uint32>(hash), kJobLockSpace);
    return tag;
}

}  // namespace

void lock_job(std::string_view owner, std::string_view job_id, JobLockMode mode) {
    const LOCKTAG tag = job_lock_tag(owner, job_id);
    pg_call([&] {
        (void)LockAcquire(&tag, mode == JobLockMode::kShared ? ShareLock : ExclusiveLock, false,
                          false);
    });
}

bool try_lock_job(std::string_view owner, std::string_view job_id, JobLockMode mode) {
    const LOCKTAG tag = job_lock_tag(owner, job_id);
    return pg_call([&] {
        return LockAcquire(&tag, mode == JobLockMode::kShared ? ShareLock : ExclusiveLock, false,
                           true) != LOCKACQUIRE_NOT_AVAIL;
    });
}

}  // namespace batchguard::pg
