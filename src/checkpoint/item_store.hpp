// Items of a batch: their registration, the O(1) per-item outcome writes and their bulk
// forms.
#pragma once
#include "checkpoint/batch_store.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

namespace batchguard::checkpoint {

struct Outcome {
    enum class Kind { kCompleted, kFailed } kind;
    std::optional<Datum> result;            // jsonb, completed items
    std::optional<std::string_view> error;  // failed items
    std::optional<Datum> detail;            // jsonb object, failed items
};

class ItemStore {
  public:
    ItemStore(pg::SpiSession& spi, std::string_view owner) : spi_(spi), owner_(owner) {}

    // Records one outcome; true when the item changed. With a lease token, the token
    // must still be the item's lease (PB001 otherwise). In a batch of registered items
    // an unknown item is an error (22023).
    bool record(const Batch& batch, std::string_view item_id, const Outcome& outcome,
                std::optional<std::int64_t> lease_token);

    // Registers the items of a text[] as pending (start_batch, add_items); returns how
    // many were new.
    std::int64_t register_items(const Batch& batch, Datum items);

    // save_checkpoint's merges. `items` is a text[] datum, `failed` a validated jsonb array.
    void record_completed(const Batch& batch, Datum items);
    void record_failed(const Batch& batch, Datum failed);

    // Rejects the first item of the list that a registered batch does not know.
    void require_registered(const Batch& batch, Datum items);
    void require_registered_failed(const Batch& batch, Datum failed);

    bool is_completed(const Batch& batch, std::string_view item_id);
    std::int64_t retry_failed(const Batch& batch, std::optional<Datum> item_ids);

  private:
    // After a leased write changed nothing: returns only when the lease holder repeats
    // its own final call (nothing to do); throws the fencing error otherwise.
    void check_lease_refusal(const Batch& batch, std::string_view item_id,
                             std::int64_t lease_token);
    [[noreturn]] void not_registered(std::string_view item_id);

    pg::SpiSession& spi_;
    std::string_view owner_;
};

}  // namespace batchguard::checkpoint
