#include "backup/progress.hpp"

namespace batchguard::backup {

const char* phase_name(int phase) {
    switch (phase) {
        case 1:
            return "planning";
        case 2:
            return "writing rows";
        case 3:
            return "finishing";
        default:
            return "unknown";
    }
}

ExportProgress::ExportProgress(const std::string& backup_id) { (void)backup_id; }
ExportProgress::~ExportProgress() = default;
void ExportProgress::set_phase(ExportPhase phase) { (void)phase; }
void ExportProgress::publish() {}
void request_progress_shmem() {}

}  // namespace batchguard::backup
