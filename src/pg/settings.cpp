#include "pg/settings.hpp"

#include "pg/postgres.hpp"

extern "C" {
#include "utils/guc.h"
}

namespace batchguard::pg {

namespace {
int notify_interval = 250;
}  // namespace

void define_settings() {
    DefineCustomIntVariable(
        "batchguard.notify_interval",
        "Least time between two progress events (NOTIFY) of one job from one session.",
        "Each event takes a database-wide lock at commit; 0 sends one per committed "
        "transaction that changed the job.",
        &notify_interval, 250, 0, 3600 * 1000, PGC_USERSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);
}

int notify_interval_ms() { return notify_interval; }

}  // namespace batchguard::pg
