// libFuzzer target, structure-aware: the backup reader's semantic rules.
//
// An input is the decompressed text of a backup (header line, row lines, trailer line).
// The custom mutator works at the JSON level — it swaps table names, plants invalid
// UTF-8, drops, duplicates and reorders lines, edits the header's tables and references —
// and then usually rewrites the trailer so that counts and checksum match, so that most
// inputs get past the checks a byte-level fuzzer rarely passes (zstd frame, JSON syntax,
// counts, checksum) and reach the rules behind them. Each input is compressed into a
// valid zstd frame and read the way backup_rows and restore_backup read a file
// (ZstdReader, then BackupStreamReader).
//
// A file the reader accepts to the end (verified trailer) must obey docs/backup-format.md;
// anything else is a finding (the target aborts and names the rule):
//   - the text is UTF-8;
//   - every row names a table the header lists, and a listed parent table;
//   - the trailer's counts are those of the rows read, for tables the header lists.
#include "core/backup_format.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "core/zstd_stream.hpp"
#include "support/xor_hasher.hpp"

#include <zstd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

extern "C" size_t LLVMFuzzerMutate(std::uint8_t* data, size_t size, size_t max_size);

namespace {

using batchguard::JsonValue;

bool valid_utf8(std::string_view s) {
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

// ---- the mutator ---------------------------------------------------------------------

// The mutator's random numbers (splitmix64): std::mt19937, seeded afresh for each mutation,
// filled its 624-word state every time, 5% of this target's time.
class Random {
  public:
    explicit Random(unsigned int seed) : state_(seed) {}
    std::uint32_t operator()() {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return static_cast<std::uint32_t>((z ^ (z >> 31)) >> 32);
    }

  private:
    std::uint64_t state_;
};

// The mutator parses the header and every row line of its input to rewrite the trailer, and
// the inputs libFuzzer hands it share most of their lines: remembering what each line gave
// spares most of those parses (with the header's, 18% of the target's time). Forgets
// everything when the lines it remembers reach 16 MiB.
template <typename Value>
class LineCache {
  public:
    template <typename Compute>
    const Value& get(const std::string& line, Compute compute) {
        if (const auto it = map_.find(line); it != map_.end()) return it->second;
        if (bytes_ + line.size() > (std::size_t{16} << 20)) {
            map_.clear();
            bytes_ = 0;
        }
        bytes_ += line.size();
        return map_.emplace(line, compute(line)).first->second;
    }
    // What `line` gives, known without computing it.
    void put(const std::string& line, Value value) {
        if (map_.count(line)) return;
        get(line, [&](const std::string&) { return std::move(value); });
    }

  private:
    std::unordered_map<std::string, Value> map_;
    std::size_t bytes_ = 0;
};

void write_json(std::string& out, const JsonValue& v) {
    switch (v.kind) {
        case JsonValue::Kind::kNull:
            out += "null";
            break;
        case JsonValue::Kind::kBool:
            out += v.boolean ? "true" : "false";
            break;
        case JsonValue::Kind::kNumber:
            out += v.text;
            break;
        case JsonValue::Kind::kString:
            batchguard::append_json_string(out, v.text);
            break;
        case JsonValue::Kind::kArray:
            out += '[';
            for (std::size_t i = 0; i < v.items.size(); ++i) {
                if (i) out += ',';
                write_json(out, v.items[i]);
            }
            out += ']';
            break;
        case JsonValue::Kind::kObject:
            out += '{';
            for (std::size_t i = 0; i < v.keys.size(); ++i) {
                if (i) out += ',';
                batchguard::append_json_string(out, v.keys[i]);
                out += ':';
                write_json(out, v.values[i]);
            }
            out += '}';
            break;
    }
}

std::vector<std::string> split_lines(std::string_view text) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        lines.emplace_back(text.substr(start, end - start));
        start = end + 1;
    }
    return lines;
}

// Strings worth planting: names a header may or may not list, and bytes that are not UTF-8
// (a lone continuation byte, a truncated sequence, an overlong '/', a UTF-16 surrogate, a
// code point above U+10FFFF).
const std::vector<std::string>& planted_strings() {
    static const std::vector<std::string> strings = {"",
                                                     "public.parent",
                                                     "public.child",
                                                     "public.other",
                                                     "\"public\".\"parent\"",
                                                     "a\x80z",
                                                     "\xC3",
                                                     "\xC0\xAF",
                                                     "\xED\xA0\x80",
                                                     "\xF4\x90\x80\x80",
                                                     "\xFF\xFE",
                                                     "\xE2\x82",
                                                     "1",
                                                     "[\"eu\", 7]",
                                                     std::string(300, 'x')};
    return strings;
}

// Every string, number or container node of a value, to pick one at random.
void collect_nodes(JsonValue& v, std::vector<JsonValue*>& nodes) {
    nodes.push_back(&v);
    for (JsonValue& item : v.items) collect_nodes(item, nodes);
    for (JsonValue& value : v.values) collect_nodes(value, nodes);
}

std::vector<std::string> table_names(const JsonValue& header) {
    std::vector<std::string> names;
    if (const JsonValue* tables = header.find("tables"))
        for (const JsonValue& t : tables->items)
            if (const JsonValue* name = t.find("name"); name && name->is_string())
                names.push_back(name->text);
    return names;
}

LineCache<std::vector<std::string>>& header_cache() {
    static LineCache<std::vector<std::string>> cache;
    return cache;
}

std::vector<std::string> header_table_names(const std::vector<std::string>& lines) {
    if (lines.empty()) return {};
    return header_cache().get(lines[0], [](const std::string& header) {
        // A tape, reused: no tree of vectors and strings for a header read only once.
        static batchguard::JsonTape tape;
        std::vector<std::string> names;
        try {
            tape.parse(header, "header");
        } catch (const batchguard::Error&) {
            return names;
        }
        if (const auto tables = tape.root().find("tables"))
            for (batchguard::JsonRef t : tables->items())
                if (const auto name = t.find("name"); name && name->is_string())
                    names.emplace_back(name->text());
        return names;
    });
}

// The table a row line names, if it is a row line.
const std::optional<std::string>& row_table(const std::string& line) {
    static LineCache<std::optional<std::string>> cache;
    return cache.get(line, [](const std::string& row) -> std::optional<std::string> {
        try {
            return batchguard::parse_row_line(row).table;
        } catch (const batchguard::Error&) {
            return std::nullopt;
        }
    });
}

// Changes one JSON node of one line; false when the line is not JSON.
bool mutate_json_line(std::string& line, bool is_header, Random& rng,
                      const std::vector<std::string>& names) {
    JsonValue v;
    try {
        v = batchguard::parse_json(line, "line");
    } catch (const batchguard::Error&) {
        return false;
    }
    std::vector<JsonValue*> nodes;
    collect_nodes(v, nodes);
    JsonValue& node = *nodes[rng() % nodes.size()];
    const auto& planted = planted_strings();
    switch (rng() % 7) {
        case 0:  // a table name of the header, or another name
        case 1:
            node = JsonValue{};
            node.kind = JsonValue::Kind::kString;
            node.text = (!names.empty() && rng() % 2) ? names[rng() % names.size()]
                                                      : planted[rng() % planted.size()];
            break;
        case 2:  // invalid UTF-8 inside an existing string
            if (node.is_string()) {
                const std::string& bad = planted[5 + rng() % 7];
                node.text.insert(rng() % (node.text.size() + 1), bad);
            }
            break;
        case 3:  // another kind of value
            node = JsonValue{};
            node.kind = static_cast<JsonValue::Kind>(rng() % 6);
            if (node.kind == JsonValue::Kind::kNumber) node.text = std::to_string(rng() % 5);
            break;
        case 4:  // drop a member or an item
            if (!node.keys.empty()) {
                const std::size_t i = rng() % node.keys.size();
                node.keys.erase(node.keys.begin() + i);
                node.values.erase(node.values.begin() + i);
            } else if (!node.items.empty()) {
                node.items.erase(node.items.begin() + rng() % node.items.size());
            }
            break;
        case 5:  // duplicate an item (a table, a column, a reference)
            if (!node.items.empty()) node.items.push_back(node.items[rng() % node.items.size()]);
            break;
        case 6:  // a number
            if (node.kind == JsonValue::Kind::kNumber)
                node.text = std::to_string(static_cast<long long>(rng() % 7) - 1);
            break;
    }
    line.clear();
    write_json(line, v);
    // The new header's tables, for fix_trailer, from the tree at hand (parsing the line
    // again took 5% of the target's time).
    if (is_header) header_cache().put(line, table_names(v));
    return true;
}

// Rewrites (or appends) the trailer so that it matches the lines before it.
void fix_trailer(std::vector<std::string>& lines) {
    std::size_t body_end = lines.size();
    for (std::size_t i = 0; i < lines.size(); ++i)
        if (batchguard::is_trailer_line(lines[i])) {
            body_end = i;
            break;
        }
    if (body_end == 0) return;
    lines.resize(body_end);
    std::vector<std::string> order = header_table_names(lines);
    std::map<std::string, std::int64_t> counts;
    for (const std::string& name : order) counts[name] = 0;
    XorHasher hasher;
    std::int64_t total = 0;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        hasher.update(lines[i].data(), lines[i].size());
        hasher.update("\n", 1);
        if (i == 0) continue;
        if (const std::optional<std::string>& table = row_table(lines[i])) {
            if (!counts.count(*table)) order.push_back(*table);
            ++counts[*table];
        }
        ++total;
    }
    batchguard::BackupTrailer trailer;
    for (const std::string& name : order) trailer.row_counts.emplace_back(name, counts[name]);
    trailer.total_rows = total;
    trailer.body_sha256 = hasher.finish_hex();
    lines.push_back(batchguard::trailer_line(trailer));
}

}  // namespace

extern "C" size_t LLVMFuzzerCustomMutator(std::uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
    Random rng(seed);
    std::vector<std::string> lines =
        split_lines(std::string_view(reinterpret_cast<const char*>(data), size));
    if (lines.empty() || rng() % 16 == 0) return LLVMFuzzerMutate(data, size, max_size);
    const std::vector<std::string> names = header_table_names(lines);
    const std::size_t pick = rng() % lines.size();
    switch (rng() % 6) {
        case 0:
        case 1:
        case 2:
            if (mutate_json_line(lines[pick], pick == 0, rng, names)) break;
            [[fallthrough]];
        case 3: {  // bytes of one line, the others kept
            std::string& line = lines[pick];
            const std::size_t room = line.size() + 64;
            line.resize(room);
            line.resize(
                LLVMFuzzerMutate(reinterpret_cast<std::uint8_t*>(line.data()), room - 64, room));
            break;
        }
        case 4:  // duplicate or drop a line
            if (rng() % 2)
                lines.insert(lines.begin() + pick, lines[pick]);
            else if (lines.size() > 1)
                lines.erase(lines.begin() + pick);
            break;
        case 5:  // swap two lines
            std::swap(lines[pick], lines[rng() % lines.size()]);
            break;
    }
    if (rng() % 8 != 0) fix_trailer(lines);
    std::string out;
    for (const std::string& line : lines) {
        out += line;
        out += '\n';
    }
    if (out.size() > max_size) return size;
    std::memcpy(data, out.data(), out.size());
    return out.size();
}

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
