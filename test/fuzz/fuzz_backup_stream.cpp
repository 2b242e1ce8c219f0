// libFuzzer target: the backup stream parser (header, row lines, trailer, counts and
// body checksum) on an arbitrary decompressed stream.
#include "core/backup_format.hpp"
#include "core/error.hpp"
#include "support/xor_hasher.hpp"

#include <cstdint>
#include <string>

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
