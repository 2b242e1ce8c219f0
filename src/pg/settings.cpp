#include "pg/settings.hpp"

#include "pg/postgres.hpp"

extern "C" {
#include "utils/guc.h"
#include "utils/varlena.h"
}

namespace batchguard::settings {

bool enable_worker = true;
char* database_names = nullptr;
int cleanup_interval_s = 600;
int finished_batch_retention_s = -1;

namespace {

// A list of database names, as in shared_preload_libraries: comma-separated, quotes allowed.
bool check_database_names(char** newval, void**, GucSource) {
    char* copy = pstrdup(*newval);
    List* names = nullptr;
    const bool valid = SplitIdentifierString(copy, ',', &names);
    if (!valid) GUC_check_errdetail("List syntax is invalid.");
    list_free(names);
    pfree(copy);
    return valid;
}

}  // namespace

void define() {
    DefineCustomBoolVariable(
        "batchguard.enable_worker", "Runs pg_batchguard's maintenance workers.",
        "Needs shared_preload_libraries = 'pg_batchguard'. Without them, schedule "
        "batchguard.run_maintenance() or batchguard.cleanup_expired_backups() with pg_cron.",
        &enable_worker, true, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable(
        "batchguard.database_names", "Databases that pg_batchguard's workers maintain.",
        "Comma-separated. A listed database without the extension is skipped until it has it.",
        &database_names, "", PGC_SIGHUP, GUC_LIST_INPUT, check_database_names, nullptr, nullptr);
    DefineCustomIntVariable(
        "batchguard.cleanup_interval", "Time between two maintenance rounds of a worker.", nullptr,
        &cleanup_interval_s, 600, 1, 7 * 24 * 3600, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr,
        nullptr);
    DefineCustomIntVariable(
        "batchguard.finished_batch_retention",
        "How long completed, failed and cancelled batches are kept after their last change.",
        "-1 keeps them until cleanup_checkpoint() discards them.", &finished_batch_retention_s, -1,
        -1, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
}

}  // namespace batchguard::settings
