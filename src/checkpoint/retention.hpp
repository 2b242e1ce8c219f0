#pragma once
#include "pg/spi.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace batchguard::checkpoint {

// Discards completed, failed and cancelled batches whose last change is older than
// `retention_s` seconds: all owners' when `owner` is nullopt, else that owner's only.
std::int64_t purge_finished_batches(pg::SpiSession& spi, const std::optional<std::string>& owner,
                                    std::int64_t retention_s);

}  // namespace batchguard::checkpoint
