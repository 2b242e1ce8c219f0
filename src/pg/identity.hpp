// Who the caller is, and the per-job lock that keeps item writes and discards apart.
#pragma once
#include "pg/postgres.hpp"

#include <string>
#include <string_view>

namespace batchguard::pg {

// The owner recorded on every row: the current user's name, or "<role>/<identity>" when
// a superuser mapped the current role to a trusted identity source (map_identity).
std::string current_owner();

// Members of the role batchguard_admin (created by the operator) read every owner's rows.
inline constexpr const char* kAdminRole = "batchguard_admin";
bool current_user_is_admin();

// Forgets cached identity mappings and owner bindings (they are re-read on next use);
// called on change.
void invalidate_identity_cache();

// Records that the role owns rows under its name (batchguard.owner_roles), before a batch
// or a backup of the caller is created (`role`: the caller, whose owner the rows get): a
// role dropped and created again under the same name (with a new OID) is then refused the
// old role's rows. Cheap once the binding exists.
void register_owner_role(Oid role);

// Tells every backend (at commit) to re-read the owner bindings (adopt_owner).
void broadcast_owner_role_change();

// A transaction-scoped lock on one (owner, job): item writers share it, so they never
// wait for each other; cleanup_checkpoint takes it exclusively, so no item write lands
// in a batch that is being discarded. It lives in the advisory lock space with a key
// field that pg_advisory_lock() never uses, so it cannot clash with the application's.
enum class JobLockMode { kShared, kExclusive };
void lock_job(std::string_view owner, std::string_view job_id, JobLockMode mode);
// The same lock if it is free now: false (nothing taken) when another transaction holds
// it in a conflicting mode. Maintenance never waits for a tenant's lock.
bool try_lock_job(std::string_view owner, std::string_view job_id, JobLockMode mode);

}  // namespace batchguard::pg
