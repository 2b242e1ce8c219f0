// A maintenance round, step by step: what the workers do every batchguard.cleanup_interval,
// run_maintenance() in one transaction and CALL batchguard.maintain() with a commit after
// each step. No step ever waits for a lock another transaction holds: what is locked is
// left for a later round.
#pragma once
#include "pg/postgres.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace batchguard::worker {

// In the order a round runs them; each is independent of the others.
enum class Step : int {
    kSweepOrphans = 0,  // superusers only
    kExpiredBackups,
    kMissingFiles,
    kExpiredLeases,
    kFinishedBatches,
};
inline constexpr int kStepCount = 5;
const char* step_name(Step step);

// Whose rows a round maintains: a superuser's (the workers) every owner's, anyone else's
// their own.
struct Scope {
    std::string actor;
    std::optional<std::string> owner;  // nullopt: every owner
    bool all_owners = false;
};
Scope current_scope();

// The clear error (55000 "<function> cannot run on a standby") in recovery.
void refuse_on_standby(const char* function);

struct RoundCounts {
    std::int64_t expired_backups = 0;
    std::int64_t released_leases = 0, failed_leases = 0;
    // orphan files moved to their folder's quarantine, and deleted from it after the
    // quarantine period; folders of other servers (copies of the cluster) left alone
    std::int64_t orphans_quarantined = 0, quarantined_deleted = 0, orphans_not_removed = 0;
    std::int64_t earlier_install = 0, foreign_folders = 0;
    std::int64_t missing_files = 0, unreadable_files = 0, detached_backups = 0;
    std::int64_t files_found_again = 0;  // missing or unreadable before, ok again
    std::int64_t purged_batches = 0;
    std::int64_t skipped_locked = 0;  // batches left for a later round: their job was locked
    std::vector<std::string> failed_steps;
};

// Runs one step in the current transaction, adding what it did to `counts`.
void run_step(Step step, const Scope& scope, RoundCounts& counts);

// The round's summary (JSON), logged at LOG when the round changed anything.
std::string finish_round(const RoundCounts& counts);

}  // namespace batchguard::worker
