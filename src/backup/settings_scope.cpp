#include "backup/settings_scope.hpp"

#include "pg/guard.hpp"

extern "C" {
#include "utils/guc.h"
}

namespace batchguard::backup {

const std::vector<std::pair<std::string, std::string>>& PinnedOutputSettings::values() {
    // Values then keep their meaning whatever the session's settings: shortest exact floats,
    // hex bytea, ISO dates and intervals, UTC, C-locale money.
    static const std::vector<std::pair<std::string, std::string>> kValues = {
        {"extra_float_digits", "1"},   {"bytea_output", "hex"}, {"DateStyle", "ISO, YMD"},
        {"IntervalStyle", "iso_8601"}, {"TimeZone", "UTC"},     {"lc_monetary", "C"},
    };
    return kValues;
}

bool is_pinned_output_setting(const std::string& name) {
    for (const auto& [pinned, value] : PinnedOutputSettings::values())
        if (name == pinned) return true;
    return false;
}

PinnedOutputSettings::PinnedOutputSettings() {
    nest_level_ = pg::pg_call([] { return NewGUCNestLevel(); });
    for (const auto& [name, value] : values()) {
        pg::pg_call([&] {
            (void)set_config_option(name.c_str(), value.c_str(), PGC_USERSET, PGC_S_SESSION,
                                    GUC_ACTION_SAVE, true, 0, false);
        });
    }
}

PinnedOutputSettings::~PinnedOutputSettings() {
    try {
        pg::pg_call([&] { AtEOXact_GUC(true, nest_level_); });
    } catch (...) {
        // The transaction's abort restores the settings anyway.
    }
}

}  // namespace batchguard::backup
