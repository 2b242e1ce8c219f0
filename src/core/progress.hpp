#pragma once
#include "core/pure.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace batchguard {

// What the caller explicitly set on a batch; everything else is derived.
enum class BatchState { kActive, kPaused, kCancelled };

enum class BatchStatus { kRunning, kPaused, kCancelled, kCompleted, kFailed };

std::string_view to_string(BatchStatus status);
BatchState parse_batch_state(std::string_view text);  // throws Error on unknown text
std::string_view to_string(BatchState state);

// Counts of committed items by status, plus the batch's own settings.
struct ItemCounts {
    std::int64_t completed = 0;
    std::int64_t failed = 0;
    std::int64_t pending = 0;
    std::int64_t running = 0;

    std::int64_t known() const { return completed + failed + pending + running; }
    std::int64_t processed() const { return completed + failed; }
};

struct BatchFacts {
    ItemCounts counts;
    std::optional<std::int64_t> explicit_total;  // set by the caller, if ever
    bool items_registered = false;               // start_batch: the known items are the total
    BatchState state = BatchState::kActive;
    // Microseconds since any common epoch; `now` is when the progress is asked for.
    std::int64_t started_at_us = 0;
    std::optional<std::int64_t> last_update_us;
};

struct Progress {
    BatchStatus status = BatchStatus::kRunning;
    std::optional<std::int64_t> total;  // unknown for a lazy batch without an explicit total
    std::int64_t completed = 0;
    std::int64_t failed = 0;
    std::int64_t pending = 0;  // includes items not yet known when the total is larger
    std::int64_t running = 0;
    std::optional<std::int64_t> percent_hundredths;  // 0..10000
    std::optional<double> items_per_second;
    std::optional<std::int64_t> eta_us;
};

// The total is the larger of the explicit total and the number of known items; the known
// items of a start_batch batch are its total once there are any.
std::optional<std::int64_t> effective_total(const BatchFacts& facts);

Progress compute_progress(const BatchFacts& facts);

// "[#########-----------]" of `width` cells; empty cells when the percentage is unknown.
std::string progress_bar(std::optional<std::int64_t> percent_hundredths, int width = 20);

}  // namespace batchguard
