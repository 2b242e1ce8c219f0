// The size limits of backups as a real bound under concurrency: the per-owner quota
// (batchguard.max_backup_bytes_per_owner) and the total limit (batchguard.max_backup_bytes)
// count the exports still in progress, not only the committed backups.
//
// Per owner, exports of one owner take turns: the quota lock of the owner is held until the
// export's transaction ends, and the committed usage is read after it is taken. In total,
// exports of different owners never wait for each other: each running export reserves its
// bytes in shared memory until its transaction ends, and a new export counts them (without
// the library in shared_preload_libraries there is no shared memory: the total limit then
// makes all exports of the database take turns too).
#pragma once
#include "pg/postgres.hpp"

#include <cstdint>
#include <string>

namespace batchguard::backup {

class Quota {
  public:
    // Before the export writes: takes the locks its limits need and reads the usage.
    explicit Quota(const std::string& owner);

    // The export's file has `bytes` bytes now: raises 53400 when that would exceed a limit,
    // else reserves them (in total, until the transaction ends).
    void check(std::int64_t bytes);

  private:
    void read_usage();

    std::string owner_;
    std::int64_t owner_limit_ = -1, total_limit_ = -1;
    std::int64_t owner_used_ = 0, total_used_ = 0;
    std::uint64_t usage_generation_ = 0;  // of the shared reservations when usage was read
    std::int64_t reserved_before_ = 0;    // by earlier exports of this transaction
};

// Called from _PG_init while shared_preload_libraries are loaded.
void install_quota_shmem_hooks();

}  // namespace batchguard::backup
