// libFuzzer target: the backup stream parser (header, row lines, trailer, counts and
// body checksum) on an arbitrary decompressed stream.
#include "core/backup_format.hpp"
#include "core/error.hpp"

#include <cstdint>
#include <string>

namespace {
class XorHasher : public batchguard::Hasher {
  public:
    void update(const void* data, std::size_t size) override {
        for (std::size_t i = 0; i < size; ++i) h_ ^= static_cast<const unsigned char*>(data)[i];
    }
    std::string finish_hex() override { return batchguard::to_hex(&h_, 1); }

  private:
    unsigned char h_ = 0;
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    batchguard::StringSource source(input, 1 + size % 61);
    try {
        batchguard::BackupStreamReader reader(source, std::make_unique<XorHasher>());
        reader.header();
        while (auto row = reader.next_row()) {
            if (row->row.empty() || row->row.front() != '{' || row->row.back() != '}')
                __builtin_trap();
        }
    } catch (const batchguard::Error&) {
    }
    return 0;
}
