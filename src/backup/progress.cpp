#include "backup/progress.hpp"

#include "pg/guard.hpp"
#include "pg/result_row.hpp"
#include "pg/identity.hpp"

extern "C" {
#include "catalog/pg_authid.h"
#include "common/hashfn.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"
}

#include <cstring>

namespace batchguard::backup {

namespace {

// A slot is claimed by flipping in_use 0 -> 1; the owner then fills it and sets pid last.
// Readers take what they see: this is a monitoring view, not a source of truth.
struct ProgressSlot {
    pg_atomic_uint32 in_use;
    pg_atomic_uint32 phase;
    pg_atomic_uint64 rows;
    pg_atomic_uint64 bytes;
    volatile int pid;
    Oid database;
    Oid user;
    uint64 owner_hash;  // of the export's owner: the view shows each owner its own
    TimestampTz started;
    char backup_id[UUID_LEN * 2 + 8];
};

struct ProgressShared {
    int slots;
    ProgressSlot slot[FLEXIBLE_ARRAY_MEMBER];
};

ProgressShared* shared = nullptr;
shmem_request_hook_type previous_request_hook = nullptr;
shmem_startup_hook_type previous_startup_hook = nullptr;
int my_slot = -1;  // the slot this backend holds, for the exit callback
bool exit_callback_registered = false;

Size shared_size(int slots) {
    return add_size(offsetof(ProgressShared, slot), mul_size(slots, sizeof(ProgressSlot)));
}

void request_shmem() {
    if (previous_request_hook) previous_request_hook();
    RequestAddinShmemSpace(shared_size(MaxBackends));
}

void startup_shmem() {
    if (previous_startup_hook) previous_startup_hook();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found = false;
    shared = static_cast<ProgressShared*>(
        ShmemInitStruct("pg_batchguard export progress", shared_size(MaxBackends), &found));
    if (!found) {
        shared->slots = MaxBackends;
        for (int i = 0; i < MaxBackends; ++i) {
            ProgressSlot& s = shared->slot[i];
            pg_atomic_init_u32(&s.in_use, 0);
            pg_atomic_init_u32(&s.phase, 0);
            pg_atomic_init_u64(&s.rows, 0);
            pg_atomic_init_u64(&s.bytes, 0);
            s.pid = 0;
        }
    }
    LWLockRelease(AddinShmemInitLock);
}

void release_slot(int index) {
    if (shared == nullptr || index < 0) return;
    ProgressSlot& s = shared->slot[index];
    s.pid = 0;
    pg_write_barrier();
    pg_atomic_write_u32(&s.in_use, 0);
    if (my_slot == index) my_slot = -1;
}

// A backend that exits in the middle of an export (FATAL) gives its slot back here.
void release_at_exit(int, Datum) { release_slot(my_slot); }

}  // namespace

const char* phase_name(std::uint32_t phase) {
    switch (phase) {
        case 0:
            return "starting";
        case 1:
            return "planning";
        case 2:
            return "writing rows";
        case 3:
            return "finishing";
        default:
            return "unknown";
    }
}

void install_progress_shmem_hooks() {
    previous_request_hook = shmem_request_hook;
    shmem_request_hook = request_shmem;
    previous_startup_hook = shmem_startup_hook;
    shmem_startup_hook = startup_shmem;
}

// The owner as the slots keep it: a mapped role's end users share its OID, not its owner.
uint64 owner_hash(const std::string& owner) {
    return hash_bytes_extended(reinterpret_cast<const unsigned char*>(owner.data()),
                               static_cast<int>(owner.size()), 0x4247);
}

ExportProgress::ExportProgress(const std::string& backup_id, const std::string& owner) {
    if (shared == nullptr) return;
    if (!exit_callback_registered) {
        pg::pg_call([] { before_shmem_exit(release_at_exit, 0); });
        exit_callback_registered = true;
    }
    for (int i = 0; i < shared->slots; ++i) {
        uint32 expected = 0;
        if (!pg_atomic_compare_exchange_u32(&shared->slot[i].in_use, &expected, 1)) continue;
        ProgressSlot& s = shared->slot[i];
        s.database = MyDatabaseId;
        s.user = GetUserId();
        s.owner_hash = owner_hash(owner);
        s.started = GetCurrentTimestamp();
        std::strncpy(s.backup_id, backup_id.c_str(), sizeof s.backup_id - 1);
        s.backup_id[sizeof s.backup_id - 1] = '\0';
        pg_atomic_write_u32(&s.phase, static_cast<uint32>(ExportPhase::kStarting));
        pg_atomic_write_u64(&s.rows, 0);
        pg_atomic_write_u64(&s.bytes, 0);
        pg_write_barrier();
        s.pid = MyProcPid;
        slot_ = i;
        my_slot = i;
        return;
    }
}

ExportProgress::~ExportProgress() { release_slot(slot_); }

void ExportProgress::set_phase(ExportPhase phase) {
    if (slot_ < 0) return;
    pg_atomic_write_u32(&shared->slot[slot_].phase, static_cast<uint32>(phase));
    publish();
}

void ExportProgress::publish() {
    if (slot_ < 0) return;
    pg_atomic_write_u64(&shared->slot[slot_].rows, static_cast<uint64>(rows));
    pg_atomic_write_u64(&shared->slot[slot_].bytes, bytes_written);
}

}  // namespace batchguard::backup

using namespace batchguard;

// The rows of batchguard.export_progress: the exports of the caller's owner (the end user
// of a mapped role, not every user of that role), or every export for members of
// pg_read_all_stats.
BATCHGUARD_FUNCTION(batchguard_export_progress) {
    pg::pg_call([&] { InitMaterializedSRF(fcinfo, 0); });
    if (backup::shared == nullptr) {
        // Once per session: the view is empty without the shared memory of preloading.
        static bool hinted = false;
        if (!hinted) {
            hinted = true;
            pg::pg_call([] {
                ereport(WARNING,
                        (errmsg("batchguard.export_progress is empty: pg_batchguard is not "
                                "preloaded"),
                         errhint("Add pg_batchguard to shared_preload_libraries and restart "
                                 "the server to see running exports.")));
            });
        }
        return 0;
    }
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    const Oid me = GetUserId();
    const bool all = pg::pg_call([&] { return has_privs_of_role(me, ROLE_PG_READ_ALL_STATS); });
    pg::ResultRow row(rsinfo->setDesc);  // the installed OUT columns, by name
    const uint64 mine = all ? 0 : backup::owner_hash(pg::current_owner());
    for (int i = 0; i < backup::shared->slots; ++i) {
        backup::ProgressSlot& s = backup::shared->slot[i];
        if (pg_atomic_read_u32(&s.in_use) == 0) continue;
        const int pid = s.pid;
        pg_read_barrier();
        if (pid == 0) continue;
        if (!all && (s.user != me || s.owner_hash != mine)) continue;
        char backup_id[sizeof s.backup_id];
        std::memcpy(backup_id, s.backup_id, sizeof backup_id);
        backup_id[sizeof backup_id - 1] = '\0';
        row.set("pid", Int32GetDatum(pid));
        row.set("datid", ObjectIdGetDatum(s.database));
        row.set("usesysid", ObjectIdGetDatum(s.user));
        row.set("backup_id", pg::pg_call([&] {
                    return DirectFunctionCall1(uuid_in, CStringGetDatum(backup_id));
                }));
        row.set("phase", pg::pg_call([&] {
                    return CStringGetTextDatum(backup::phase_name(pg_atomic_read_u32(&s.phase)));
                }));
        row.set("rows_written", Int64GetDatum(static_cast<int64>(pg_atomic_read_u64(&s.rows))));
        row.set("bytes_written", Int64GetDatum(static_cast<int64>(pg_atomic_read_u64(&s.bytes))));
        row.set("started_at", TimestampTzGetDatum(s.started));
        pg::pg_call([&] {
            tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row.values(), row.nulls());
        });
    }
    return 0;
}
