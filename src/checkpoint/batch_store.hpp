// Reads and writes of batchguard.batches and batchguard.batch_items. Every statement
// names its owner explicitly: these run as the extension's owner, not under row security.
#pragma once
#include "pg/spi.hpp"

#include "core/progress.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// Columns of a batch as batch_from_rows() reads them, in this order.
#define BATCH_COLUMNS \
    "batch_id, items_registered, total_items, max_attempts, state, created_at, state_changed_at"

namespace batchguard::checkpoint {

struct Batch {
    std::int64_t batch_id = 0;
    bool items_registered = false;
    std::optional<std::int64_t> total_items;
    std::int32_t max_attempts = 3;
    BatchState state = BatchState::kActive;
    TimestampTz created_at = 0;
    std::optional<TimestampTz> state_changed_at;
};

struct ItemTotals {
    ItemCounts counts;
    std::optional<TimestampTz> last_processed_at;
    std::optional<TimestampTz> last_update_at;
};

class BatchStore {
  public:
    explicit BatchStore(pg::SpiSession& spi) : spi_(spi) {}

    std::optional<Batch> find(std::string_view owner, std::string_view job_id);
    // The caller's batch, created in lazy mode (items need no registration) if new.
    Batch find_or_create(std::string_view owner, std::string_view job_id);
    // A new batch of registered items (start_batch); nullopt when the owner already has
    // the job id.
    std::optional<Batch> create_registered(std::string_view owner, std::string_view job_id,
                                           std::optional<std::int64_t> total, Datum metadata,
                                           std::int32_t max_attempts);
    // The caller's batch under the shared job lock (as item writers take it); the
    // unknown-job error otherwise.
    Batch existing(std::string_view owner, std::string_view job_id);
    // The same, with the batch row locked for a state change.
    Batch locked(std::string_view owner, std::string_view job_id);
    // The batch row locked for a state change, or nullopt when the owner has no such job.
    std::optional<Batch> lock(std::string_view owner, std::string_view job_id);
    // Sets the explicit state; false when it already was.
    bool set_state(Batch& batch, BatchState state);
    bool remove(std::string_view owner, std::string_view job_id);

    ItemTotals totals(std::int64_t batch_id);
    // An explicit total below the number of known items is an error (22023).
    void set_total(const Batch& batch, std::int64_t total);

  private:
    pg::SpiSession& spi_;
};

Batch batch_from_rows(const pg::Rows& rows, std::uint64_t row, int first_column);
BatchFacts facts_of(const Batch& batch, const ItemTotals& totals);
// Latest of item updates, state changes and creation.
TimestampTz last_change_of(const Batch& batch, const ItemTotals& totals);

}  // namespace batchguard::checkpoint
