// Output settings pinned for the duration of an export (a new GUC nest level, restored
// when the scope ends, as a function's SET clause does).
#pragma once
#include "pg/postgres.hpp"

#include <string>
#include <utility>
#include <vector>

namespace batchguard::backup {

class PinnedOutputSettings {
  public:
    PinnedOutputSettings();
    ~PinnedOutputSettings();
    PinnedOutputSettings(const PinnedOutputSettings&) = delete;
    PinnedOutputSettings& operator=(const PinnedOutputSettings&) = delete;

    // The settings in force, as recorded in the backup header.
    static const std::vector<std::pair<std::string, std::string>>& values();

  private:
    int nest_level_ = -1;
};

// Whether a backup header's setting is one of those an export pins (values()): the only
// settings a restore applies from a header, so a crafted header cannot set anything else.
bool is_pinned_output_setting(const std::string& name);

}  // namespace batchguard::backup
