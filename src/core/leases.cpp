#include "core/leases.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <unordered_set>

namespace batchguard {

void validate_max_items(std::optional<std::int32_t> max_items) {
    if (!max_items) throw Error(sqlstate::kNullValueNotAllowed, "max_items must not be NULL");
    if (*max_items < 1 || *max_items > kMaxClaimItems)
        throw Error(sqlstate::kInvalidParameterValue,
                    "max_items must be between 1 and " + std::to_string(kMaxClaimItems),
                    "max_items is " + std::to_string(*max_items) + ".");
}

std::vector<std::int64_t> distinct_tokens(const std::vector<std::optional<std::int64_t>>& tokens,
                                          std::string_view what) {
    std::vector<std::int64_t> result;
    result.reserve(tokens.size());
    std::unordered_set<std::int64_t> seen;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        if (!tokens[i])
            throw Error(sqlstate::kNullValueNotAllowed, std::string(what) +
                                                            " must not contain NULL (element " +
                                                            std::to_string(i + 1) + ")");
        if (seen.insert(*tokens[i]).second) result.push_back(*tokens[i]);
    }
    return result;
}

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
