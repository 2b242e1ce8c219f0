#pragma once
#include "pg/spi.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace batchguard::checkpoint {

struct PurgedBatches {
    std::int64_t purged = 0;
    std::int64_t skipped_locked = 0;  // their job lock was held: left for a later round
};

// Discards completed, failed and cancelled batches whose last change is older than
// `retention_s` seconds: all owners' when `owner` is nullopt, else that owner's only.
// Never waits: a batch whose job lock another transaction holds is left for next time.
PurgedBatches purge_finished_batches(pg::SpiSession& spi, const std::optional<std::string>& owner,
                                     std::int64_t retention_s);

}  // namespace batchguard::checkpoint
