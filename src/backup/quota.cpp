#include "backup/quota.hpp"

#include "core/error.hpp"
#include "pg/guard.hpp"
#include "pg/settings.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "common/hashfn.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/snapmgr.h"
}

namespace batchguard::backup {

namespace {

namespace cfg = batchguard::settings;

// locktag_field4 of the quota locks (the job locks use 0x4247).
constexpr uint16 kOwnerQuotaLockSpace = 0x4248;
constexpr uint16 kTotalQuotaLockSpace = 0x4249;

// Each backend's reservation: the bytes of its transaction's exports that have not
// committed yet. `ended` counts reservations given back (commit or abort): a usage read
// before one was given back may miss a backup that committed since, so it is read again.
struct Reservation {
    Oid database;
    std::int64_t bytes;
};
struct QuotaShared {
    LWLock* lock;
    pg_atomic_uint64 ended;
    int slots;
    Reservation slot[FLEXIBLE_ARRAY_MEMBER];
};

QuotaShared* shared = nullptr;
shmem_request_hook_type previous_request_hook = nullptr;
shmem_startup_hook_type previous_startup_hook = nullptr;
bool callback_registered = false;
bool reserved_in_transaction = false;
constexpr const char* kTranche = "pg_batchguard quota";

Size shared_size(int slots) {
    return add_size(offsetof(QuotaShared, slot), mul_size(slots, sizeof(Reservation)));
}

void request_shmem() {
    if (previous_request_hook) previous_request_hook();
    RequestAddinShmemSpace(shared_size(MaxBackends));
    RequestNamedLWLockTranche(kTranche, 1);
}

void startup_shmem() {
    if (previous_startup_hook) previous_startup_hook();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found = false;
    shared = static_cast<QuotaShared*>(
        ShmemInitStruct("pg_batchguard quota", shared_size(MaxBackends), &found));
    if (!found) {
        shared->lock = &(GetNamedLWLockTranche(kTranche))->lock;
        pg_atomic_init_u64(&shared->ended, 0);
        shared->slots = MaxBackends;
        for (int i = 0; i < MaxBackends; ++i) shared->slot[i] = Reservation{InvalidOid, 0};
    }
    LWLockRelease(AddinShmemInitLock);
}

int my_slot() {
    const int index = MyBackendId - 1;
    return shared != nullptr && index >= 0 && index < shared->slots ? index : -1;
}

// At the end of the transaction the reservation goes: the backups committed (now counted
// as committed usage) or were removed.
void give_back(XactEvent event, void*) {
    if (!reserved_in_transaction) return;
    if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
        event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT &&
        event != XACT_EVENT_PREPARE)
        return;
    reserved_in_transaction = false;
    const int index = my_slot();
    if (index < 0) return;
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    shared->slot[index] = Reservation{InvalidOid, 0};
    pg_atomic_fetch_add_u64(&shared->ended, 1);
    LWLockRelease(shared->lock);
}

void lock_quota(uint16 space, const std::string& key) {
    const uint64 hash = hash_bytes_extended(reinterpret_cast<const unsigned char*>(key.data()),
                                            static_cast<int>(key.size()), 0);
    pg::pg_call([&] {
        LOCKTAG tag;
        SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, static_cast<uint32>(hash >> 32),
                             static_cast<uint32>(hash), space);
        (void)LockAcquire(&tag, ExclusiveLock, false, false);
    });
}

std::int64_t kilobytes_to_bytes(int kb) { return kb < 0 ? -1 : std::int64_t{kb} * 1024; }

[[noreturn]] void owner_quota_exceeded(std::int64_t used, std::int64_t limit) {
    throw Error(sqlstate::kConfigurationLimitExceeded, "backup quota of the owner exceeded",
                "The owner's backups use " + std::to_string(used) +
                    " bytes; batchguard.max_backup_bytes_per_owner is " + std::to_string(limit) +
                    " bytes.",
                "Delete backups you no longer need, or export fewer rows.");
}

[[noreturn]] void total_limit_exceeded(std::int64_t used, std::int64_t limit) {
    throw Error(sqlstate::kConfigurationLimitExceeded, "backup storage limit exceeded",
                "All backups use " + std::to_string(used) +
                    " bytes, including exports in progress; batchguard.max_backup_bytes is " +
                    std::to_string(limit) + " bytes.",
                "Delete backups that are no longer needed.");
}

}  // namespace

void install_quota_shmem_hooks() {
    previous_request_hook = shmem_request_hook;
    shmem_request_hook = request_shmem;
    previous_startup_hook = shmem_startup_hook;
    shmem_startup_hook = startup_shmem;
}

Quota::Quota(const std::string& owner) : owner_(owner) {
    owner_limit_ = kilobytes_to_bytes(cfg::max_backup_bytes_per_owner_kb);
    total_limit_ = kilobytes_to_bytes(cfg::max_backup_bytes_kb);
    if (owner_limit_ < 0 && total_limit_ < 0) return;
    // Held until the transaction ends: the next export of the owner then sees this one's
    // backup committed (or gone) before it reads the usage.
    if (owner_limit_ >= 0) lock_quota(kOwnerQuotaLockSpace, owner);
    if (total_limit_ >= 0 && my_slot() < 0) lock_quota(kTotalQuotaLockSpace, "");
    if (total_limit_ >= 0 && my_slot() >= 0) {
        if (!callback_registered) {
            pg::pg_call([] { RegisterXactCallback(give_back, nullptr); });
            callback_registered = true;
        }
        reserved_before_ = reserved_in_transaction ? shared->slot[my_slot()].bytes : 0;
    }
    read_usage();
}

// The committed usage, seen by a snapshot taken now (also under REPEATABLE READ, whose
// transaction snapshot would miss backups committed since it began). The reservations'
// generation is read first: a reservation given back after it (a backup committed since)
// makes check() read the usage again.
void Quota::read_usage() {
    static pg::Statement usage_sql{
        "SELECT coalesce(pg_catalog.sum(compressed_bytes), 0)::pg_catalog.int8,"
        "       coalesce(pg_catalog.sum(compressed_bytes) FILTER (WHERE owner = $1),"
        "                0)::pg_catalog.int8"
        "  FROM batchguard.backups",
        {TEXTOID}};
    if (shared != nullptr) usage_generation_ = pg_atomic_read_u64(&shared->ended);
    pg::SpiSession spi(pg::SpiSession::Access::kReadOnly);
    pg::Rows usage = spi.execute_with_latest_snapshot(usage_sql, {pg::Arg::text(owner_)});
    total_used_ = usage.int8(0, 1).value();
    owner_used_ = usage.int8(0, 2).value();
}

void Quota::check(std::int64_t bytes) {
    if (owner_limit_ >= 0 && owner_used_ + bytes > owner_limit_)
        owner_quota_exceeded(owner_used_, owner_limit_);
    if (total_limit_ < 0) return;
    const int index = my_slot();
    if (index < 0) {
        if (total_used_ + bytes > total_limit_) total_limit_exceeded(total_used_, total_limit_);
        return;
    }
    for (;;) {
        std::int64_t others = 0;
        bool stale = false;
        LWLockAcquire(shared->lock, LW_EXCLUSIVE);
        if (pg_atomic_read_u64(&shared->ended) != usage_generation_) {
            stale = true;
        } else {
            for (int i = 0; i < shared->slots; ++i)
                if (i != index && shared->slot[i].database == MyDatabaseId)
                    others += shared->slot[i].bytes;
            if (total_used_ + others + bytes <= total_limit_) {
                shared->slot[index] = Reservation{MyDatabaseId, reserved_before_ + bytes};
                reserved_in_transaction = true;
            }
        }
        LWLockRelease(shared->lock);
        if (stale) {
            read_usage();
            continue;
        }
        if (total_used_ + others + bytes > total_limit_)
            total_limit_exceeded(total_used_ + others, total_limit_);
        return;
    }
}

}  // namespace batchguard::backup
