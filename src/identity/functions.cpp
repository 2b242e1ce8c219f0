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

Oid role_arg(FunctionCallInfo fcinfo) {
    pg::require_not_null(fcinfo, 0, "role");
    const Oid role = PG_GETARG_OID(0);
    if (!pg::pg_call([&] { return SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(role)); }))
        throw Error(sqlstate::kUndefinedObject,
                    "role with OID " + std::to_string(role) + " does not exist");
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

BATCHGUARD_FUNCTION(batchguard_map_identity) {
    require_superuser();
    const Oid role = role_arg(fcinfo);
    const std::optional<std::string_view> setting = pg::text_arg(fcinfo, 1);
    if (!setting) throw Error(sqlstate::kNullValueNotAllowed, "setting must not be NULL");
    validate_identity_setting(*setting);
    const std::optional<std::string_view> json_key = pg::text_arg(fcinfo, 2);
    if (json_key) validate_identity_json_key(*json_key);

    static pg::Statement upsert{
        "INSERT INTO batchguard.identity_map (role, setting, json_key) VALUES ($1::regrole, $2, $3)"
        " ON CONFLICT (role) DO UPDATE SET setting = excluded.setting, json_key = "
        "excluded.json_key",
        {OIDOID, TEXTOID, TEXTOID}};
    {
        pg::SpiSession spi;
        spi.execute(upsert, {pg::Arg::of(ObjectIdGetDatum(role)), pg::Arg::text(*setting),
                             json_key ? pg::Arg::text(*json_key) : pg::Arg::null()});
    }
    broadcast_mapping_change();
    PG_RETURN_VOID();
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
