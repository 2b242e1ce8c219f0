#include "pg/identity.hpp"

#include "pg/guard.hpp"

extern "C" {
#include "common/hashfn.h"
#include "storage/lock.h"
}

namespace batchguard::pg {

namespace {
// locktag_field4 of our job locks; pg_advisory_lock() uses 1 and 2.
constexpr uint16 kJobLockSpace = 0x4247;  // "BG"
}  // namespace

std::string current_owner() {
    const char* name = pg_call([] { return GetUserNameFromId(GetUserId(), false); });
    return std::string(name);
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
