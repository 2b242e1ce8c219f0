#include "checkpoint/progress_events.hpp"

#include "core/progress_events.hpp"
#include "pg/guard.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "commands/async.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
}

#include <vector>

namespace batchguard::checkpoint {

namespace {

// Lives for the backend: the rate limit is per session.
EventLimiter* limiter = nullptr;
bool callback_registered = false;

void send_due_events(void*) {
    const std::int64_t now = pg::pg_call([] { return GetCurrentTimestamp(); });
    const std::int64_t interval = static_cast<std::int64_t>(settings::notify_interval_ms) * 1000;
    const std::vector<EventLimiter::Event> events = limiter->due(now, interval);
    for (const EventLimiter::Event& event : events)
        pg::pg_call([&] { Async_Notify(event.channel.c_str(), event.payload.c_str()); });
}

void mark_committed(void*) { limiter->committed(); }

void on_transaction_event(XactEvent event, void*) {
    if (limiter == nullptr || limiter->idle()) return;
    switch (event) {
        case XACT_EVENT_PRE_COMMIT:
            // Events are hints: a failure here must not fail the caller's commit.
            pg::guard_callback("queueing progress events", send_due_events, nullptr);
            break;
        case XACT_EVENT_COMMIT:
            pg::guard_callback("recording progress events", mark_committed, nullptr);
            break;
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PRE_PREPARE:  // NOTIFY cannot be prepared: a 2PC commit sends none
            limiter->discarded();
            break;
        default:
            break;
    }
}

}  // namespace

std::string progress_channel(std::string_view owner) {
    static std::string cached_owner;
    static std::string cached_channel;
    if (!cached_channel.empty() && cached_owner == owner) return cached_channel;
    uint8 digest[PG_SHA256_DIGEST_LENGTH];
    pg::pg_call([&] {
        pg_cryptohash_ctx* ctx = pg_cryptohash_create(PG_SHA256);
        if (ctx == nullptr || pg_cryptohash_init(ctx) < 0 ||
            pg_cryptohash_update(ctx, reinterpret_cast<const uint8*>(owner.data()), owner.size()) <
                0 ||
            pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
            elog(ERROR, "could not compute the SHA-256 digest of the owner: %s",
                 pg_cryptohash_error(ctx));
        pg_cryptohash_free(ctx);
    });
    std::string channel = progress_channel_name(digest, sizeof(digest));
    cached_owner = owner;
    cached_channel = channel;
    return channel;
}

void note_progress(std::string_view owner, std::string_view job_id) {
    if (limiter == nullptr) limiter = new EventLimiter();
    if (!callback_registered) {
        pg::pg_call([] { RegisterXactCallback(on_transaction_event, nullptr); });
        callback_registered = true;
    }
    std::string key;
    key.reserve(owner.size() + job_id.size() + 1);
    key.append(owner).push_back('\0');
    key.append(job_id);
    limiter->touch(std::move(key), progress_channel(owner), std::string(job_id));
}

}  // namespace batchguard::checkpoint
