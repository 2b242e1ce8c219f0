// SQL entry points of owner identity (see docs/security.md).
#include "core/error.hpp"
#include "core/identity.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "utils/inval.h"
}

using namespace batchguard;

namespace {

void require_superuser() {
    if (!superuser())
        throw Error(sqlstate::kInsufficientPrivilege,
                    "only superusers can map roles to identities");
}

void require_role_exists(Oid role) {
    if (!pg::pg_call([&] { return SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(role)); }))
        throw Error(sqlstate::kUndefinedObject,
                    "role with OID " + std::to_string(role) + " does not exist");
}

Oid role_arg(FunctionCallInfo fcinfo) {
    pg::require_not_null(fcinfo, 0, "role");
    const Oid role = PG_GETARG_OID(0);
    require_role_exists(role);
    return role;
}

// Tells every backend (at commit) to forget its cached mappings.
void broadcast_mapping_change() {
    pg::pg_call([] {
        CacheInvalidateRelcacheByRelid(
            get_relname_relid("identity_map", get_namespace_oid("batchguard", false)));
    });
    pg::invalidate_identity_cache();
}

}  // namespace

BATCHGUARD_FUNCTION(batchguard_current_owner) {
    (void)fcinfo;
    return pg::text_datum(pg::current_owner());
}

BATCHGUARD_FUNCTION(batchguard_is_admin) {
    (void)fcinfo;
    return BoolGetDatum(pg::current_user_is_admin());
}

// map_identity(role, setting, json_key [, session_role]): the 1.0 form (three arguments)
// trusts sessions whose user is a member of the mapped role itself; the four-argument form
// names the role whose sessions are trusted (PostgREST's authenticator).
BATCHGUARD_FUNCTION(batchguard_map_identity) {
    require_superuser();
    const Oid role = role_arg(fcinfo);
    const std::optional<std::string_view> setting = pg::text_arg(fcinfo, 1);
    if (!setting) throw Error(sqlstate::kNullValueNotAllowed, "setting must not be NULL");
    validate_identity_setting(*setting);
    const std::optional<std::string_view> json_key = pg::text_arg(fcinfo, 2);
    if (json_key) validate_identity_json_key(*json_key);
    Oid session_role = role;
    if (PG_NARGS() > 3) {
        pg::require_not_null(fcinfo, 3, "session_role");
        session_role = PG_GETARG_OID(3);
        require_role_exists(session_role);
    }

    static pg::Statement upsert{
        "INSERT INTO batchguard.identity_map (role, setting, json_key, session_role)"
        " VALUES ($1::pg_catalog.regrole, $2, $3, $4::pg_catalog.regrole)"
        " ON CONFLICT (role) DO UPDATE SET setting = excluded.setting,"
        "     json_key = excluded.json_key, session_role = excluded.session_role",
        {OIDOID, TEXTOID, TEXTOID, OIDOID}};
    // A database still at 1.0 has no session_role: the mapping is made as 1.0 made it.
    static pg::Statement upsert_1_0{
        "INSERT INTO batchguard.identity_map (role, setting, json_key)"
        " VALUES ($1::pg_catalog.regrole, $2, $3)"
        " ON CONFLICT (role) DO UPDATE SET setting = excluded.setting,"
        "     json_key = excluded.json_key",
        {OIDOID, TEXTOID, TEXTOID}};
    {
        pg::SpiSession spi;
        const pg::Arg role_arg = pg::Arg::of(ObjectIdGetDatum(role));
        const pg::Arg setting_arg = pg::Arg::text(*setting);
        const pg::Arg key_arg = json_key ? pg::Arg::text(*json_key) : pg::Arg::null();
        if (pg::extension_column_exists("identity_map", "session_role"))
            spi.execute(upsert, {role_arg, setting_arg, key_arg,
                                 pg::Arg::of(ObjectIdGetDatum(session_role))});
        else
            spi.execute(upsert_1_0, {role_arg, setting_arg, key_arg});
    }
    broadcast_mapping_change();
    PG_RETURN_VOID();
}

// adopt_owner(role): the rows recorded under the role's name, left by a dropped role of
// that name, belong to this role from now on.
BATCHGUARD_FUNCTION(batchguard_adopt_owner) {
    if (!superuser())
        throw Error(sqlstate::kInsufficientPrivilege, "only superusers can hand rows to a role");
    const Oid role = role_arg(fcinfo);
    static pg::Statement adopt{
        "UPDATE batchguard.owner_roles SET role = $2::pg_catalog.regrole,"
        "       created_at = pg_catalog.now()"
        " WHERE role_name = $1 AND role::pg_catalog.oid <> $2",
        {TEXTOID, OIDOID}};
    const std::string name = pg::pg_call([&] { return GetUserNameFromId(role, false); });
    bool adopted = false;
    {
        pg::SpiSession spi;
        adopted =
            spi.execute(adopt, {pg::Arg::text(name), pg::Arg::of(ObjectIdGetDatum(role))}).size() >
            0;
    }
    pg::broadcast_owner_role_change();
    return BoolGetDatum(adopted);
}

BATCHGUARD_FUNCTION(batchguard_unmap_identity) {
    require_superuser();
    const Oid role = role_arg(fcinfo);
    static pg::Statement remove{"DELETE FROM batchguard.identity_map WHERE role::oid = $1",
                                {OIDOID}};
    bool removed = false;
    {
        pg::SpiSession spi;
        removed = spi.execute(remove, {pg::Arg::of(ObjectIdGetDatum(role))}).size() > 0;
    }
    broadcast_mapping_change();
    return BoolGetDatum(removed);
}
