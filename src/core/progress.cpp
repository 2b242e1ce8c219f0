#include "core/progress.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <cmath>

namespace batchguard {

std::string_view to_string(BatchStatus status) {
    switch (status) {
        case BatchStatus::kRunning:
            return "running";
        case BatchStatus::kPaused:
            return "paused";
        case BatchStatus::kCancelled:
            return "cancelled";
        case BatchStatus::kCompleted:
            return "completed";
        case BatchStatus::kFailed:
            return "failed";
    }
    return "running";
}

std::string_view to_string(BatchState state) {
    switch (state) {
        case BatchState::kActive:
            return "active";
        case BatchState::kPaused:
            return "paused";
        case BatchState::kCancelled:
            return "cancelled";
    }
    return "active";
}

BatchState parse_batch_state(std::string_view text) {
    if (text == "active") return BatchState::kActive;
    if (text == "paused") return BatchState::kPaused;
    if (text == "cancelled") return BatchState::kCancelled;
    throw Error(sqlstate::kInternalError, "unknown batch state \"" + std::string(text) + "\"");
}

std::optional<std::int64_t> effective_total(const BatchFacts& facts) {
    const std::int64_t known = facts.counts.known();
    if (facts.explicit_total) return std::max(*facts.explicit_total, known);
    // A started batch whose items are still to come (start_batch without items, then
    // add_items) has no total yet, rather than being complete with none.
    if (facts.items_registered && known > 0) return known;
    return std::nullopt;
}

Progress compute_progress(const BatchFacts& facts) {
    const ItemCounts& c = facts.counts;
    Progress p;
    p.total = effective_total(facts);
    p.completed = c.completed;
    p.failed = c.failed;
    p.running = c.running;
    p.pending = p.total ? *p.total - c.completed - c.failed - c.running : c.pending;

    if (facts.state == BatchState::kPaused)
        p.status = BatchStatus::kPaused;
    else if (facts.state == BatchState::kCancelled)
        p.status = BatchStatus::kCancelled;
    else if (!p.total || p.pending > 0 || p.running > 0)
        p.status = BatchStatus::kRunning;
    else
        p.status = c.failed > 0 ? BatchStatus::kFailed : BatchStatus::kCompleted;

    if (p.total) {
        const std::int64_t total = *p.total;
        p.percent_hundredths =
            total == 0 ? 10000
                       : std::min<std::int64_t>(
                             10000, static_cast<std::int64_t>(
                                        (static_cast<long double>(c.processed()) * 10000) / total));
    }

    if (facts.last_update_us && c.processed() > 0) {
        const double seconds =
            static_cast<double>(*facts.last_update_us - facts.started_at_us) / 1e6;
        if (seconds > 0) {
            p.items_per_second = static_cast<double>(c.processed()) / seconds;
            if (p.total) {
                const std::int64_t remaining = std::max<std::int64_t>(0, *p.total - c.processed());
                p.eta_us = static_cast<std::int64_t>(
                    std::llround(static_cast<double>(remaining) / *p.items_per_second * 1e6));
            }
        }
    }
    return p;
}

std::string progress_bar(std::optional<std::int64_t> percent_hundredths, int width) {
    width = std::max(1, width);
    const std::int64_t hundredths =
        std::clamp<std::int64_t>(percent_hundredths.value_or(0), 0, 10000);
    const int filled = percent_hundredths ? static_cast<int>(hundredths * width / 10000) : 0;
    std::string bar = "[";
    bar.append(static_cast<std::size_t>(filled), '#');
    bar.append(static_cast<std::size_t>(width - filled), '-');
    bar.push_back(']');
    return bar;
}

}  // namespace batchguard
