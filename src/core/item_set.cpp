#include "core/item_set.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <functional>

namespace batchguard {

namespace {

// The distinct items seen so far, as positions into `items`: open addressing with linear
// probing in one flat table (8 bytes a slot, at most half full), instead of one heap node
// per item as std::unordered_set would allocate. filter_pending_items passes every item
// of its input through here, a million of them in one call is ordinary.
class SeenItems {
  public:
    explicit SeenItems(const std::vector<std::string_view>& items) : items_(items) {
        // PostgreSQL arrays hold far fewer elements than this (they are below 1 GB).
        if (items.size() >= UINT32_MAX)
            throw Error(sqlstate::kInvalidParameterValue, "too many items in one call");
        slots_.resize(std::bit_ceil(std::max<std::size_t>(items.size() * 2, 16)));
        mask_ = slots_.size() - 1;
    }

    std::size_t hash(std::size_t position) const {
        return std::hash<std::string_view>{}(items_[position]);
    }
    // Starts loading the slot where the probe for `hash` begins.
    void prefetch(std::size_t hash) const { __builtin_prefetch(&slots_[hash & mask_]); }

    // True the first time the item at `position` (or an equal one) is seen.
    bool insert(std::size_t position, std::size_t hash) {
        const std::string_view item = items_[position];
        // Slot tags are never 0 (0 marks an empty slot): the high hash bits, or 1.
        const std::uint32_t tag = static_cast<std::uint32_t>(hash >> 32) | 1u;
        for (std::size_t slot = hash & mask_;; slot = (slot + 1) & mask_) {
            Slot& s = slots_[slot];
            if (s.tag == 0) {
                s = {tag, static_cast<std::uint32_t>(position)};
                return true;
            }
            if (s.tag == tag && items_[s.position] == item) return false;
        }
    }

  private:
    struct Slot {
        std::uint32_t tag = 0;
        std::uint32_t position = 0;
    };
    const std::vector<std::string_view>& items_;
    std::vector<Slot> slots_;
    std::size_t mask_ = 0;
};

}  // namespace

std::vector<std::size_t> first_occurrences(const std::vector<std::string_view>& items) {
    return pending_positions(items, [](std::size_t) { return false; });
}

std::vector<std::size_t> pending_positions(const std::vector<std::string_view>& items,
                                           const std::function<bool(std::size_t)>& done) {
    SeenItems seen(items);
    std::vector<std::size_t> kept;
    kept.reserve(items.size());
    // Items go through in blocks: hash a block and prefetch its slots, then probe. The table
    // is larger than the CPU caches, and waiting for one slot at a time costs more than
    // the rest of the work.
    constexpr std::size_t kBlock = 16;
    std::size_t hashes[kBlock];
    for (std::size_t start = 0; start < items.size(); start += kBlock) {
        const std::size_t end = std::min(items.size(), start + kBlock);
        for (std::size_t i = start; i < end; ++i) {
            hashes[i - start] = seen.hash(i);
            seen.prefetch(hashes[i - start]);
        }
        for (std::size_t i = start; i < end; ++i) {
            if (!seen.insert(i, hashes[i - start])) continue;
            if (!done(i)) kept.push_back(i);
        }
    }
    return kept;
}

}  // namespace batchguard
