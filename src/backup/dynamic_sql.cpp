#include "backup/dynamic_sql.hpp"

#include "core/error.hpp"
#include "pg/guard.hpp"

namespace batchguard::backup {

pg::Rows run_dynamic(const std::string& sql, const std::vector<DynamicArg>& args, bool read_only) {
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
