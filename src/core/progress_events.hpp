// Progress events without PostgreSQL: the LISTEN channel's name and the rate limit of
// the events one session sends (src/checkpoint/progress_events.cpp sends them).
#pragma once
#include "core/pure.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace batchguard {

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
