#include "checkpoint/progress_events.hpp"

#include "core/progress_events.hpp"
#include "pg/guard.hpp"
#include "pg/settings.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "commands/async.h"
#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "utils/inval.h"
}

#include <optional>
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

namespace {

// The installation's secret that salts the channels (batchguard.installation, readable by
// superusers only), read once per backend: without it anyone could compute another owner's
// channel. Empty in a database still at 1.0, whose channels stay 1.0's.
std::optional<std::string> secret;
std::string cached_owner;
std::string cached_channel;
Oid installation_relid = InvalidOid;

void forget_secret(Datum, Oid relid) {
    if (relid != InvalidOid && relid != installation_relid) return;
    secret.reset();
    cached_channel.clear();
}

const std::string& channel_secret() {
    if (secret) return *secret;
    static bool callback_registered = false;
    if (!callback_registered) {
        pg::pg_call([] { CacheRegisterRelcacheCallback(forget_secret, 0); });
        callback_registered = true;
    }
    static pg::Statement read_secret{
        "SELECT channel_secret FROM batchguard.installation ORDER BY installed_xid LIMIT 1", {}};
    installation_relid = pg::pg_call([] {
        const Oid schema = get_namespace_oid("batchguard", true);
        return OidIsValid(schema) ? get_relname_relid("installation", schema) : InvalidOid;
    });
    std::string value;
    if (pg::extension_column_exists("installation", "channel_secret")) {
        pg::SpiSession spi(pg::SpiSession::Access::kReadOnly);
        value = spi.execute(read_secret, {}).text(0, 1).value_or("");
    }
    secret = std::move(value);
    return *secret;
}

}  // namespace

std::string progress_channel(std::string_view owner) {
    const std::string& key = channel_secret();
    if (!cached_channel.empty() && cached_owner == owner) return cached_channel;
    uint8 digest[PG_SHA256_DIGEST_LENGTH];
    pg::pg_call([&] {
        if (key.empty()) {  // 1.0's channel: the owner's SHA-256
            pg_cryptohash_ctx* ctx = pg_cryptohash_create(PG_SHA256);
            if (ctx == nullptr || pg_cryptohash_init(ctx) < 0 ||
                pg_cryptohash_update(ctx, reinterpret_cast<const uint8*>(owner.data()),
                                     owner.size()) < 0 ||
                pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
                elog(ERROR, "could not compute the SHA-256 digest of the owner: %s",
                     pg_cryptohash_error(ctx));
            pg_cryptohash_free(ctx);
            return;
        }
        pg_hmac_ctx* ctx = pg_hmac_create(PG_SHA256);
        if (ctx == nullptr ||
            pg_hmac_init(ctx, reinterpret_cast<const uint8*>(key.data()), key.size()) < 0 ||
            pg_hmac_update(ctx, reinterpret_cast<const uint8*>(owner.data()), owner.size()) < 0 ||
            pg_hmac_final(ctx, digest, sizeof(digest)) < 0)
            elog(ERROR, "could not compute the HMAC of the owner: %s", pg_hmac_error(ctx));
        pg_hmac_free(ctx);
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
