// libFuzzer target, structure-aware: the backup reader's semantic rules.
//
// An input is the decompressed text of a backup (header line, row lines, trailer line).
// The custom mutator (support/semantic_mutator.cpp) works at the JSON level — it swaps
// table names, plants invalid UTF-8, drops, duplicates and reorders lines, edits the
// header's tables and references — and then usually rewrites the trailer so that counts and
// checksum match, so that most inputs get past the checks a byte-level fuzzer rarely passes
// (zstd frame, JSON syntax, counts, checksum) and reach the rules behind them. Each input is
// compressed into a valid zstd frame and read the way backup_rows and restore_backup read
// a file (ZstdReader, then BackupStreamReader).
//
// A file the reader accepts to the end (verified trailer) must obey docs/backup-format.md;
// anything else is a finding (the target aborts and names the rule):
//   - the text is UTF-8;
//   - every row names a table the header lists, and a listed parent table;
//   - the trailer's counts are those of the rows read, for tables the header lists.
#include "core/backup_format.hpp"
#include "core/error.hpp"
#include "core/zstd_stream.hpp"
#include "support/xor_hasher.hpp"

#include <zstd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

namespace {

// The oracle is no code under test: not instrumented for coverage (tracing each byte's
// comparisons cost more than the check).
__attribute__((no_sanitize("coverage"))) bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t n;
        std::uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (s.size() - i <= n) return false;
        for (std::size_t k = 1; k <= n; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

[[noreturn]] void finding(const char* rule, std::string_view detail) {
    std::fprintf(stderr, "semantic rule broken: %s: %.*s\n", rule, static_cast<int>(detail.size()),
                 detail.data());
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    // A valid zstd frame of the text (checksum on, as the writer makes them); the context
    // is made once. Level -1 still compresses (the reader sees compressed blocks) in a
    // third of level 1's time on these inputs (4 instead of 11 microseconds): level 1
    // clears bigger match tables for every frame.
    static ZSTD_CCtx* cctx = [] {
        ZSTD_CCtx* c = ZSTD_createCCtx();
        ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, -1);
        ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
        return c;
    }();
    static std::string frame;
    frame.resize(ZSTD_compressBound(size));
    const std::size_t frame_size = ZSTD_compress2(cctx, frame.data(), frame.size(), data, size);
    if (ZSTD_isError(frame_size)) std::abort();

    batchguard::StringSource compressed(std::string_view(frame.data(), frame_size), 1 + size % 509);
    std::map<std::string, std::int64_t> rows_per_table;
    std::int64_t rows = 0;
    try {
        batchguard::ZstdReader decompressed(compressed);
        batchguard::BackupStreamReader reader(decompressed, std::make_unique<XorHasher>());
        const batchguard::BackupHeader& header = reader.header();
        while (auto row = reader.next_row()) {
            if (header.find_table(row->table) == nullptr)
                finding("row of an unlisted table", row->table);
            if (row->parent_table && header.find_table(*row->parent_table) == nullptr)
                finding("parent of an unlisted table", *row->parent_table);
            ++rows_per_table[row->table];
            ++rows;
        }
        // Accepted to the end: a verified trailer.
        if (!valid_utf8(text)) finding("the file is not UTF-8", "");
        const batchguard::BackupTrailer& trailer = *reader.trailer();
        if (trailer.total_rows != rows) finding("total_rows differs from the rows read", "");
        for (const auto& [name, count] : trailer.row_counts) {
            if (header.find_table(name) == nullptr && count != 0)
                finding("the trailer counts rows of an unlisted table", name);
            const auto it = rows_per_table.find(name);
            if (count != (it == rows_per_table.end() ? 0 : it->second))
                finding("a trailer count differs from the rows read", name);
        }
    } catch (const batchguard::Error&) {
    }
    return 0;
}
