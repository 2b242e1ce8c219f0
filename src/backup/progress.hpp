// Progress of the exports running in the cluster (view batchguard.export_progress), in
// shared memory when the library is preloaded. Without preloading nothing is published
// and the view is empty.
#pragma once
#include "pg/postgres.hpp"

#include <cstdint>
#include <string>

namespace batchguard::backup {

enum class ExportPhase : std::uint32_t {
    kStarting = 0,
    kPlanning = 1,
    kWriting = 2,
    kFinishing = 3
};
const char* phase_name(std::uint32_t phase);

// One running export: takes a shared slot on construction (if there is one free), gives
// it back on destruction (or at backend exit).
class ExportProgress {
  public:
    ExportProgress(const std::string& backup_id, const std::string& owner);
    ~ExportProgress();
    ExportProgress(const ExportProgress&) = delete;
    ExportProgress& operator=(const ExportProgress&) = delete;

    void set_phase(ExportPhase phase);
    // Copies rows and bytes_written to the shared slot (a few atomic stores).
    void publish();

    std::int64_t rows = 0;
    std::uint64_t bytes_written = 0;

  private:
    int slot_ = -1;
};

// The key export_progress compares owners by.
uint64 owner_hash(const std::string& owner);

// Called from _PG_init while shared_preload_libraries are loaded.
void install_progress_shmem_hooks();

}  // namespace batchguard::backup
