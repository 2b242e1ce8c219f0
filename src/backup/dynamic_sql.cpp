#include "backup/dynamic_sql.hpp"

#include "core/error.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "utils/guc.h"
#include "utils/plancache.h"
}

#include <stdexcept>

namespace batchguard::backup {

namespace {

// Builds the statement's generic plan now, under `settings` (a GUC nest level, as a
// function's SET clause makes), and leaves it in the plan cache for the execution.
void plan_under(SPIPlanPtr plan, const PlannerSettings& settings) {
    pg::pg_call([&] {
        const int level = NewGUCNestLevel();
        for (const auto& [name, value] : settings)
            (void)set_config_option(name, value, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
                                    0, false);
        CachedPlan* cached = SPI_plan_get_cached_plan(plan);
        AtEOXact_GUC(true, level);
        if (cached == nullptr) elog(ERROR, "SPI_plan_get_cached_plan failed");
        ReleaseCachedPlan(cached, nullptr);  // an unsaved plan: no resource owner
    });
}

}  // namespace

pg::Rows run_dynamic(const std::string& sql, const std::vector<DynamicArg>& args, bool read_only,
                     const PlannerSettings& planner) {
    // With parameters the plan cache would plan the execution again (custom plans).
    if (!planner.empty() && !args.empty())
        throw std::logic_error("run_dynamic: planner settings for a statement with parameters");
    std::vector<Oid> types;
    std::vector<Datum> values;
    std::vector<char> nulls;
    for (const DynamicArg& a : args) {
        types.push_back(a.type);
        values.push_back(a.value.value);
        nulls.push_back(a.value.is_null ? 'n' : ' ');
    }
    nulls.push_back('\0');
    // Parsed with the path pinned, run under the caller's (see SpiSession::SearchPath).
    const pg::PinnedPlan plan(sql, types);
    if (!planner.empty()) plan_under(plan.get(), planner);
    pg::pg_call([&] {
        const int rc = SPI_execute_plan(plan.get(), values.data(), nulls.data(), read_only, 0);
        if (rc < 0) elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
    });
    return pg::Rows(SPI_tuptable, SPI_processed);
}

std::uint64_t last_processed() { return SPI_processed; }

Datum jsonb_datum(const std::string& json) {
    return pg::pg_call(
        [&] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(json.c_str())); });
}

}  // namespace batchguard::backup
