#include "core/progress_events.hpp"

#include <algorithm>

namespace batchguard {

std::string progress_channel_name(const unsigned char* digest, std::size_t digest_size) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string name(kProgressChannelPrefix);
    for (std::size_t i = 0; i < digest_size && i < 16; ++i) {
        name.push_back(kHex[digest[i] >> 4]);
        name.push_back(kHex[digest[i] & 0xF]);
    }
    return name;
}

void EventLimiter::touch(std::string key, std::string channel, std::string payload) {
    if (!touched_keys_.insert(key).second) return;
    touched_.push_back({std::move(key), std::move(channel), std::move(payload)});
}

std::vector<EventLimiter::Event> EventLimiter::due(std::int64_t now_us, std::int64_t interval_us) {
    std::vector<Event> events;
    last_interval_us_ = interval_us;
    for (Touched& t : touched_) {
        auto sent = last_sent_.find(t.key);
        // A clock that went backwards sends rather than stays silent.
        if (sent != last_sent_.end() && now_us - sent->second < interval_us &&
            now_us >= sent->second)
            continue;
        sending_.emplace_back(std::move(t.key), now_us);
        events.push_back({std::move(t.channel), std::move(t.payload)});
    }
    touched_.clear();
    touched_keys_.clear();
    return events;
}

void EventLimiter::committed() {
    std::int64_t newest = 0;
    for (auto& [key, at] : sending_) {
        last_sent_[key] = at;
        newest = std::max(newest, at);
    }
    sending_.clear();
    // Forget jobs whose interval is over: they would send anyway.
    if (last_sent_.size() > 1024) {
        for (auto it = last_sent_.begin(); it != last_sent_.end();) {
            if (newest - it->second >= last_interval_us_)
                it = last_sent_.erase(it);
            else
                ++it;
        }
    }
}

void EventLimiter::discarded() {
    touched_.clear();
    touched_keys_.clear();
    sending_.clear();
}

}  // namespace batchguard
