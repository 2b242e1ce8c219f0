// Protected tables (issue 17; docs/api.md, "Protected tables"): statement-level AFTER DELETE
// triggers with a transition table render the deleted rows into the transaction's pending
// backup; the backup is written at pre-commit (a failure there aborts the commit: a failed
// backup prevents the delete).
#pragma once
#include "pg/postgres.hpp"

#include <vector>

namespace batchguard::backup {

// While alive, deletes from these relations are not collected: delete_with_backup backs
// up the rows of its own DELETE itself (one backup, not two).
class ProtectionPause {
  public:
    explicit ProtectionPause(const std::vector<Oid>& relations);
    ~ProtectionPause();
    ProtectionPause(const ProtectionPause&) = delete;
    ProtectionPause& operator=(const ProtectionPause&) = delete;

  private:
    std::size_t size_before_;
};

}  // namespace batchguard::backup
