// Progress of the exports running in this cluster (batchguard.export_progress), in shared
// memory when the library is preloaded; without it, only the running backend's own
// export is known to it (nothing is published).
#pragma once
#include "pg/postgres.hpp"

#include <cstdint>
#include <string>

namespace batchguard::backup {

enum class ExportPhase : int { kPlanning = 1, kWriting = 2, kFinishing = 3 };
const char* phase_name(int phase);

// One running export: claims a slot on construction, frees it on destruction.
class ExportProgress {
  public:
    explicit ExportProgress(const std::string& backup_id);
    ~ExportProgress();
    ExportProgress(const ExportProgress&) = delete;
    ExportProgress& operator=(const ExportProgress&) = delete;

    void set_phase(ExportPhase phase);
    // Copies rows and bytes_written to the shared slot (cheap; called every few rows).
    void publish();

    std::int64_t rows = 0;
    std::uint64_t bytes_written = 0;

  private:
    int slot_ = -1;
};

// Shared memory: requested in _PG_init when preloaded.
void request_progress_shmem();

}  // namespace batchguard::backup
