// The library's entry: module magic, settings, and the background workers when preloaded.
#include "pg/postgres.hpp"
#include "backup/progress.hpp"
#include "backup/quota.hpp"
#include "core/interrupts.hpp"
#include "pg/files.hpp"
#include "pg/guard.hpp"
#include "pg/settings.hpp"
#include "worker/workers.hpp"

extern "C" {
#include "utils/guc.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

void _PG_init(void) {
    batchguard::settings::define();
    MarkGUCPrefixReserved("batchguard");
    batchguard::pg::register_backup_file_callbacks();
    // The core's long loops (reading a backup) answer a cancel like the rest.
    batchguard::set_interrupt_check([] { batchguard::pg::check_for_interrupts(); });
    if (process_shared_preload_libraries_in_progress) {
        // pg_upgrade runs both clusters in binary upgrade mode: no maintenance then.
        if (IsBinaryUpgrade)
            batchguard::worker::refuse_upgrade_leaving_files_behind();
        else
            batchguard::worker::register_launcher();
        batchguard::backup::install_progress_shmem_hooks();
        batchguard::backup::install_quota_shmem_hooks();
    } else if (batchguard::settings::enable_worker &&
               batchguard::settings::database_names != nullptr &&
               batchguard::settings::database_names[0] != '\0') {
        // Workers are configured but cannot run: say so (once per session that loads us).
        ereport(LOG, (errmsg("pg_batchguard is not preloaded: no maintenance workers run for "
                             "batchguard.database_names"),
                      errhint("Add pg_batchguard to shared_preload_libraries and restart, or "
                              "schedule batchguard.run_maintenance() with pg_cron and set "
                              "batchguard.enable_worker = off.")));
    }
}
