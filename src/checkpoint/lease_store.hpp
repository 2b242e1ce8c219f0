// Leases of registered items: the SQL of claim_items, complete_items, heartbeat and of
// the release of expired leases. Every statement names its batch and never touches the
// batch row.
#pragma once
#include "checkpoint/batch_store.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace batchguard::checkpoint {

struct ClaimedItem {
    std::string item_id;
    std::int64_t lease_token = 0;
    std::int32_t attempt = 0;
};

struct ReleasedLeases {
    std::int64_t pending = 0;  // expired with attempts left: pending again
    std::int64_t failed = 0;   // expired on the last attempt: failed, saying so
};

class LeaseStore {
  public:
    LeaseStore(pg::SpiSession& spi, std::string_view owner) : spi_(spi), owner_(owner) {}

    // Up to max_items pending or expired items, each with a new lease until `expires`.
    // Expired items on their last attempt become failed instead and are not returned.
    // Rows locked by another transaction are skipped, never waited for.
    std::vector<ClaimedItem> claim(const Batch& batch, std::int32_t max_items, TimestampTz now,
                                   TimestampTz expires, std::optional<std::string_view> worker,
                                   std::int64_t& failed);

    // Completes the items whose current lease is one of `tokens` (distinct). A token that
    // is not current raises the fencing error (PB001), unless its holder already recorded
    // the item's outcome (a repeated call). Returns how many items it completed.
    std::int64_t complete(const Batch& batch, const std::vector<std::int64_t>& tokens);

    // Extends the current leases among `tokens` until `expires`; returns how many.
    std::int64_t extend(const Batch& batch, const std::vector<std::int64_t>& tokens,
                        TimestampTz expires);

    // Ends the leases that expired before `now`: pending again, or failed on the last
    // attempt. Items whose row is locked (being completed right now) are left alone.
    ReleasedLeases release_expired(const Batch& batch, TimestampTz now);

  private:
    pg::SpiSession& spi_;
    std::string_view owner_;
};

// now + lease, computed by PostgreSQL (months and days follow the calendar); throws
// 22023 unless the result is later than now and at most a year (kMaxLeaseMonths) from now.
TimestampTz lease_expiry(TimestampTz now, Datum lease, const char* what);

// The longest lease claim_items and heartbeat give (22023 beyond it).
inline constexpr int kMaxLeaseMonths = 12;
inline constexpr const char* kMaxLeaseText = "1 year";

}  // namespace batchguard::checkpoint
