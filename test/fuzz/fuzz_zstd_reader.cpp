// libFuzzer target: the zstd stream reader on arbitrary bytes (what a damaged file gives).
#include "core/error.hpp"
#include "core/zstd_stream.hpp"

#include <cstdint>
#include <string>

// A frame may declare any window up to the reader's 128 MiB: keep the decompression
// context (and its window buffer) from one execution to the next whatever its size. By
// default a reader keeps only a small one, and a fresh window buffer per execution (ASan
// poisons every byte of it when it is allocated and when it is freed) took most of the
// time of this target.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
    batchguard::ZstdReader::keep_contexts_up_to(std::size_t{256} << 20);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    // Read with a small source chunk so that frame boundaries fall everywhere.
    batchguard::StringSource source(input, 1 + size % 97);
    try {
        batchguard::ZstdReader reader(source);
        static char buffer[64 * 1024];
        std::size_t total = 0;
        // A bomb is cut after 256 KiB (the readers above have their own limits): the reader's
        // loop has been through every path by then, and decompressing 64 MiB of zeros per
        // execution, as this target did, taught nothing new and took most of the time.
        while (std::size_t n = reader.read(buffer, sizeof buffer)) {
            total += n;
            if (total > (std::size_t{256} << 10)) break;
        }
    } catch (const batchguard::Error&) {
    }
    return 0;
}
