// Progress events: NOTIFY on the owner's channel with the job id, at most once per job
// per session per batchguard.notify_interval, sent only by transactions that commit.
#pragma once

#include <string>
#include <string_view>

namespace batchguard::checkpoint {

// The owner's LISTEN channel (what progress_channel() returns).
std::string progress_channel(std::string_view owner);

// This transaction changed the progress of the job: queue its event. It is decided and
// queued at pre-commit (so a prepared or rolled-back transaction sends nothing, and the
// rate limit only counts events that were sent), then delivered by PostgreSQL at commit.
void note_progress(std::string_view owner, std::string_view job_id);

}  // namespace batchguard::checkpoint
