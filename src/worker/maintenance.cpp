// run_maintenance(): everything the background workers do in one round, callable from
// SQL so that pg_cron can schedule it where the workers are not preloaded.
#include "checkpoint/retention.hpp"
#include "core/error.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"
#include "pg/settings.hpp"
#include "pg/spi.hpp"

#include <string>

using namespace batchguard;

BATCHGUARD_FUNCTION(batchguard_run_maintenance) {
    (void)fcinfo;
    // A superuser (the workers) maintains every owner's rows; anyone else their own.
    std::optional<std::string> owner;
    if (!superuser()) owner = pg::current_owner();
    pg::set_error_context("pg_batchguard maintenance");

    std::int64_t purged_batches = 0;
    {
        pg::SpiSession spi;
        if (settings::finished_batch_retention_s >= 0)
            purged_batches = checkpoint::purge_finished_batches(
                spi, owner, settings::finished_batch_retention_s);
    }
    if (purged_batches > 0)
        ereport(LOG, (errmsg("pg_batchguard maintenance: %lld finished batches purged",
                             static_cast<long long>(purged_batches))));
    const std::string summary = "{\"purged_batches\": " + std::to_string(purged_batches) + "}";
    return pg::pg_call([&] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(summary.c_str())); });
}
