// The custom mutator of fuzz_backup_semantic (see there): it works at the JSON level —
// swaps table names, plants invalid UTF-8, drops, duplicates and reorders lines, edits the
// header's tables and references — and then usually rewrites the trailer so that counts and
// checksum match.
//
// It is no code under test, so it is built without coverage instrumentation and without
// sanitizers (CMakeLists.txt), against a copy of the core compiled the same way with the
// namespace `batchguard` renamed (-Dbatchguard=batchguard_mutator): its parses of header,
// rows and trailer cost no comparison tracing and no ASan checks, and the instrumented core
// that the reader runs is untouched (instrumented, the mutator took 18-31% of the target's
// time; now some 3%). Per-mutation buffers (lines, output) are reused.
#include "core/backup_format.hpp"
#include "core/error.hpp"
#include "core/hasher.hpp"
#include "core/json.hpp"

#include <cstdint>
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

// Splits `text` into `lines`, reusing the strings (and their buffers) of the last call.
void split_lines(std::string_view text, std::vector<std::string>& lines) {
    std::size_t count = 0;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        if (count == lines.size()) lines.emplace_back();
        lines[count++].assign(text.data() + start, end - start);
        start = end + 1;
    }
    lines.resize(count);
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
    // The fuzz target's one-byte digest (support/xor_hasher.hpp), computed here: that class
    // derives from the instrumented core's Hasher, not from this copy's.
    unsigned char digest = 0;
    std::int64_t total = 0;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        for (const char c : lines[i]) digest ^= static_cast<unsigned char>(c);
        digest ^= static_cast<unsigned char>('\n');
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
    trailer.body_sha256 = batchguard::to_hex(&digest, 1);
    lines.push_back(batchguard::trailer_line(trailer));
}

}  // namespace

extern "C" size_t LLVMFuzzerCustomMutator(std::uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
    Random rng(seed);
    static std::vector<std::string> lines;
    split_lines(std::string_view(reinterpret_cast<const char*>(data), size), lines);
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
    static std::string out;
    out.clear();
    for (const std::string& line : lines) {
        out += line;
        out += '\n';
    }
    if (out.size() > max_size) return size;
    std::memcpy(data, out.data(), out.size());
    return out.size();
}
