// Rules of claims and leases that do not need PostgreSQL: argument limits, token lists,
// the progress channel's name, and the rate limit of progress events.
#pragma once
#include "core/pure.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace batchguard {

// claim_items hands out at most this many items per call (documented in docs/api.md).
inline constexpr std::int32_t kMaxClaimItems = 10000;

// Throws Error (22004 for NULL, 22023 outside 1..kMaxClaimItems).
void validate_max_items(std::optional<std::int32_t> max_items);

// Throws Error (22004) naming the element of a lease token list that is NULL; returns the
// tokens, each once, in their first order.
std::vector<std::int64_t> distinct_tokens(const std::vector<std::optional<std::int64_t>>& tokens,
                                          std::string_view what);

// The LISTEN channel of an owner's progress events: a fixed prefix and the first 32 hex
// digits of a digest of the owner (the caller computes the digest). At most 63 bytes, so
// PostgreSQL never truncates it, and it tells nothing readable about the owner.
inline constexpr std::string_view kProgressChannelPrefix = "batchguard_progress_";
std::string progress_channel_name(const unsigned char* digest, std::size_t digest_size);

// At most one event per key (owner and job) per interval and per session, where an event
// counts only once its transaction commits: a rolled-back transaction sent nothing, so it
// must not delay the next event. Times are microseconds on any common clock.
class EventLimiter {
  public:
    // The transaction changed the job `key`; `channel` is where its event goes.
    void touch(std::string key, std::string channel, std::string payload);

    struct Event {
        std::string channel;
        std::string payload;
    };
    // At pre-commit: the events to send now (touched, and not sent within the interval),
    // remembered as sent-if-committed. Clears the touched set.
    std::vector<Event> due(std::int64_t now_us, std::int64_t interval_us);
    // The transaction committed: what due() returned counts as sent.
    void committed();
    // The transaction aborted or was prepared: nothing was sent.
    void discarded();

    bool idle() const { return touched_.empty() && sending_.empty(); }
    std::size_t remembered() const { return last_sent_.size(); }

  private:
    struct Touched {
        std::string key, channel, payload;
    };
    std::vector<Touched> touched_;
    std::unordered_set<std::string> touched_keys_;
    std::vector<std::pair<std::string, std::int64_t>> sending_;
    std::unordered_map<std::string, std::int64_t> last_sent_;
    std::int64_t last_interval_us_ = 0;
};

}  // namespace batchguard
