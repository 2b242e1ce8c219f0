#include "core/backup_format.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "core/json_lines.hpp"
#include "core/utf8.hpp"
#include "core/zstd_stream.hpp"

#include <gtest/gtest.h>

#include <random>

using namespace batchguard;

namespace {

// Not SHA-256: a test double with the same interface (FNV-1a, 64 bits).
class FnvHasher : public Hasher {
  public:
    void update(const void* data, std::size_t size) override {
        const auto* p = static_cast<const unsigned char*>(data);
        for (std::size_t i = 0; i < size; ++i) h_ = (h_ ^ p[i]) * 1099511628211ULL;
    }
    std::string finish_hex() override {
        unsigned char bytes[8];
        for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(h_ >> (8 * i));
        return to_hex(bytes, 8);
    }

  private:
    std::uint64_t h_ = 1469598103934665603ULL;
};

std::string fnv(std::string_view s) {
    FnvHasher h;
    h.update(s.data(), s.size());
    return h.finish_hex();
}

std::string compress(std::string_view data, ZstdOptions options = {}) {
    StringSink sink;
    ZstdWriter writer(sink, options);
    // Write in uneven pieces, as the exporter does.
    std::size_t pos = 0, step = 1;
    while (pos < data.size()) {
        const std::size_t n = std::min(step, data.size() - pos);
        writer.write(data.substr(pos, n));
        pos += n;
        step = step * 3 % 100000 + 1;
    }
    writer.finish();
    EXPECT_EQ(writer.bytes_in(), data.size());
    EXPECT_EQ(writer.bytes_out(), sink.data().size());
    return sink.data();
}

std::string decompress(std::string_view data, std::size_t source_chunk = 1 << 20,
                       std::size_t read_size = 4096) {
    StringSource source(data, source_chunk);
    ZstdReader reader(source);
    std::string out;
    std::string buffer(read_size, '\0');
    while (std::size_t n = reader.read(buffer.data(), buffer.size())) out.append(buffer, 0, n);
    return out;
}

std::string sample_text(std::size_t size) {
    std::mt19937 rng(42);
    static const char* words[] = {"conversation",  "template",     "the", "user", "assistant",
                                  "\u00e9t\u00e9", "\u65e5\u672c", "42",  "\n",   "{\"a\":1}"};
    std::string s;
    while (s.size() < size) {
        s += words[rng() % 10];
        s += ' ';
    }
    s.resize(size);
    return s;
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return std::string(e.sqlstate()) + ": " + e.what();
    }
    return "ok";
}

BackupHeader sample_header() {
    BackupHeader h;
    h.backup_id = "8d4b3c1e-0000-4000-8000-000000000001";
    h.owner = "alice";
    h.label = "before \"cleanup\"";
    h.source = "public.parent";
    h.server_version = "15.20";
    h.encoding = "UTF8";
    h.created_at = "2024-01-01T00:00:00+00:00";
    h.expires_at = "2024-01-08T00:00:00+00:00";
    h.settings = {{"DateStyle", "ISO, YMD"}, {"TimeZone", "UTC"}};
    BackupTable parent{"public.parent", {{"id", "bigint"}, {"name", "text"}}, {"id"}, {}};
    BackupTable child{"public.child", {{"id", "integer"}, {"parent_id", "bigint"}}, {"id"}, {}};
    child.references.push_back({"public.parent", {"parent_id"}, {"id"}});
    h.tables = {parent, child};
    return h;
}

// A whole decompressed backup: header, rows, trailer with the FNV "checksum".
std::string sample_body(int parents, bool with_trailer = true, std::int64_t skew = 0) {
    std::string body = header_line(sample_header()) + "\n";
    const std::string parent = "public.parent";
    std::int64_t children = 0;
    for (int i = 0; i < parents; ++i) {
        append_row_line(body, "public.parent",
                        "{\"id\":" + std::to_string(i) + ",\"name\":\"p\\n\\u0001\"}", nullptr, "");
        for (int c = 0; c < 2; ++c, ++children)
            append_row_line(
                body, "public.child",
                "{\"id\":" + std::to_string(children) + ",\"parent_id\":" + std::to_string(i) + "}",
                &parent, std::to_string(i));
    }
    if (!with_trailer) return body;
    BackupTrailer t{{{"public.parent", parents}, {"public.child", children + skew}},
                    parents + children + skew,
                    fnv(body)};
    return body + trailer_line(t) + "\n";
}

std::int64_t read_all(std::string_view body, std::size_t chunk = 1 << 20) {
    StringSource source(body, chunk);
    BackupStreamReader reader(source, std::make_unique<FnvHasher>());
    std::int64_t n = 0;
    while (auto row = reader.next_row()) ++n;
    return n;
}

}  // namespace

TEST(Zstd, RoundTripsSmallAndLarge) {
    for (std::size_t size : {std::size_t{1}, std::size_t{1000}, std::size_t{3} << 20}) {
        const std::string text = sample_text(size);
        const std::string packed = compress(text);
        EXPECT_EQ(decompress(packed), text);
        EXPECT_EQ(decompress(packed, 7, 3), text) << "tiny reads and tiny source chunks";
    }
}

TEST(Zstd, WorkersProduceTheSameData) {
    const std::string text = sample_text(5 << 20);
    const std::string packed = compress(text, {3, 2});
    EXPECT_EQ(decompress(packed), text);
}

TEST(Zstd, EmptyInputIsOneValidFrame) {
    const std::string packed = compress("");
    EXPECT_FALSE(packed.empty());
    EXPECT_EQ(decompress(packed), "");
}

TEST(Zstd, ConcatenatedFramesAreOneStream) {
    EXPECT_EQ(decompress(compress("abc") + compress("def")), "abcdef");
}

TEST(Zstd, DetectsCorruptionTruncationAndEmptyData) {
    const std::string text = sample_text(200000);
    std::string packed = compress(text);
    EXPECT_EQ(error_of([&] { decompress(""); }), "PB103: backup data is empty");
    EXPECT_EQ(error_of([&] { decompress(packed.substr(0, packed.size() - 1)); }),
              "PB103: backup data is truncated");
    EXPECT_EQ(error_of([&] { decompress(packed.substr(0, packed.size() / 2)); }),
              "PB103: backup data is truncated");
    // A flipped byte in the data is caught by the block decoder or by the frame checksum.
    // (A flip in the frame header's window size can go unseen: the file's SHA-256 in the
    // metadata catches that one.)
    for (std::size_t pos : {std::size_t{20}, packed.size() / 2, packed.size() - 2}) {
        std::string bad = packed;
        bad[pos] = static_cast<char>(bad[pos] ^ 0x10);
        EXPECT_EQ(error_of([&] { decompress(bad); }), "PB103: backup data is corrupt") << pos;
    }
    EXPECT_EQ(error_of([&] { decompress(packed + "garbage!"); }), "PB103: backup data is corrupt");
}

TEST(Json, EscapesEveryControlCharacterAndRoundTrips) {
    std::string all;
    for (int c = 1; c < 128; ++c) all.push_back(static_cast<char>(c));
    all += "\u00e9\u65e5\U0001F600";
    std::string literal;
    append_json_string(literal, all);
    for (char c : literal) EXPECT_GE(static_cast<unsigned char>(c), 0x20);
    const JsonValue v = parse_json(literal, "test");
    ASSERT_TRUE(v.is_string());
    EXPECT_EQ(v.text, all);
}

// The escaping of append_json_string, one byte at a time (its word-at-a-time scan must
// give exactly these bytes).
std::string reference_json_string(std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out = "\"";
    for (char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"')
            out += "\\\"";
        else if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else if (c == '\r')
            out += "\\r";
        else if (c == '\t')
            out += "\\t";
        else if (c == '\b')
            out += "\\b";
        else if (c == '\f')
            out += "\\f";
        else if (c < 0x20)
            out += std::string("\\u00") + kHex[c >> 4] + kHex[c & 0xF];
        else
            out.push_back(ch);
    }
    return out + "\"";
}

TEST(Json, EscapingMatchesTheByteByByteReferenceOnRandomText) {
    std::mt19937 random(20261130);
    // Mostly plain bytes, sometimes the ones that need escaping (and their neighbours:
    // 0x1f/0x20, '!'/'#', '['/']', 0x7f, 0x80-0xff), at every length and offset around
    // the 8-byte words.
    const std::string special =
        std::string("\"\\\n\r\t\b\f\x01\x1f !#[]\x7f\x80\xc3\xa9\xff", 20) + std::string(1, '\0');
    for (int round = 0; round < 20000; ++round) {
        const std::size_t size = random() % 40;
        const unsigned odds = 1 + random() % 16;
        std::string text;
        for (std::size_t i = 0; i < size; ++i)
            text.push_back(random() % odds == 0 ? special[random() % special.size()]
                                                : static_cast<char>(0x20 + random() % 95));
        std::string out = "prefix";
        append_json_string(out, text);
        ASSERT_EQ(out, "prefix" + reference_json_string(text)) << round;
    }
    for (int b = 0; b < 256; ++b)
        for (std::size_t at = 0; at < 17; ++at) {
            std::string text(17, 'a');
            text[at] = static_cast<char>(b);
            std::string out;
            append_json_string(out, text);
            ASSERT_EQ(out, reference_json_string(text)) << b << " at " << at;
        }
}

TEST(RowLineFormat, PartsMakeTheSameLineAsAppend) {
    const std::string parent = "conversation";
    const RowLineFormat with_parent("message", &parent), without("conversation", nullptr);
    const std::string row = R"({"id":"7","title":"a \"b\""})", changed = R"(["parent_id"])";
    for (const std::string* c : {static_cast<const std::string*>(nullptr), &changed}) {
        std::string whole, parts;
        const std::string_view key = "4\"2";
        with_parent.append(whole, row, &key, c);
        with_parent.begin(parts);
        parts += row;
        ASSERT_TRUE(with_parent.has_parent());
        with_parent.end_with_parent_key_start(parts);
        append_json_string(parts, key);
        with_parent.end_after_parent_key(parts, c);
        EXPECT_EQ(parts, whole);
        whole.clear();
        parts.clear();
        without.append(whole, row, nullptr, c);
        EXPECT_FALSE(without.has_parent());
        without.begin(parts);
        parts += row;
        without.end_without_parent(parts, c);
        EXPECT_EQ(parts, whole);
    }
}

TEST(Json, DecodesEscapesAndSurrogatePairs) {
    EXPECT_EQ(parse_json(R"("a\u00e9\ud83d\ude00\/\t")", "t").text, "a\u00e9\U0001F600/\t");
    EXPECT_EQ(error_of([] { parse_json(R"("\ud83d")", "t"); }), "PB103: invalid t");
    EXPECT_EQ(error_of([] { parse_json(R"("\u0000")", "t"); }), "PB103: invalid t");
}

TEST(Json, RejectsMalformedDocuments) {
    for (const char* bad : {"", "{", "[1,]", "{\"a\":1,\"a\":2}", "01", "1.", "-", "tru",
                            "\"\x01\"", "{} x", "{\"a\" 1}", "[\"\\x\"]"})
        EXPECT_EQ(error_of([&] { parse_json(bad, "doc"); }), "PB103: invalid doc") << bad;
    std::string deep(65, '[');
    deep += std::string(65, ']');
    EXPECT_EQ(error_of([&] { parse_json(deep, "doc"); }), "PB103: invalid doc");
    EXPECT_EQ(parse_json(" [1, -2.5e3, true, null, {\"k\": \"v\"}] ", "doc").items.size(), 5u);
}

// A JsonTape node as parse_json's tree would show it (the text of kString/kNumber).
std::string tape_render(JsonRef v) {
    switch (v.kind()) {
        case JsonValue::Kind::kNull:
            return "null";
        case JsonValue::Kind::kBool:
            return v.boolean() ? "true" : "false";
        case JsonValue::Kind::kNumber:
            return std::string(v.text());
        case JsonValue::Kind::kString:
            return "s:" + std::string(v.text());
        case JsonValue::Kind::kArray: {
            std::string out = "[" + std::to_string(v.size());
            for (JsonRef item : v.items()) out += " " + tape_render(item);
            return out + "]";
        }
        case JsonValue::Kind::kObject: {
            std::string out = "{" + std::to_string(v.size());
            for (JsonRef m : v.members())
                out += " " + std::string(m.text()) + "=" + tape_render(m.value());
            return out + "}";
        }
    }
    return "?";
}

std::string tree_render(const JsonValue& v) {
    switch (v.kind) {
        case JsonValue::Kind::kNull:
            return "null";
        case JsonValue::Kind::kBool:
            return v.boolean ? "true" : "false";
        case JsonValue::Kind::kNumber:
            return v.text;
        case JsonValue::Kind::kString:
            return "s:" + v.text;
        case JsonValue::Kind::kArray: {
            std::string out = "[" + std::to_string(v.items.size());
            for (const JsonValue& item : v.items) out += " " + tree_render(item);
            return out + "]";
        }
        case JsonValue::Kind::kObject: {
            std::string out = "{" + std::to_string(v.keys.size());
            for (std::size_t i = 0; i < v.keys.size(); ++i)
                out += " " + v.keys[i] + "=" + tree_render(v.values[i]);
            return out + "}";
        }
    }
    return "?";
}

// What parsing `text` gives: the rendered value, or the error with its detail (the byte).
template <typename Parse>
std::string outcome_of(Parse parse) {
    try {
        return parse();
    } catch (const Error& e) {
        return std::string(e.sqlstate()) + ": " + e.what() + " / " + e.detail();
    }
}

TEST(JsonTape, SameValuesAndErrorsAsParseJson) {
    std::string deep64(64, '['), deep65(65, '[');
    deep64 += std::string(64, ']');
    deep65 += std::string(65, ']');
    JsonTape tape;  // reused from document to document, as the readers do
    for (const std::string& text : std::vector<std::string>{
             "",
             "{",
             "[1,]",
             "{\"a\":1,\"a\":2}",
             "{\"a\":{\"b\":1,\"b\":2}}",
             "{\"a\":1,\"b\":{\"a\":1},\"c\":[{\"a\":1},{\"a\":2}]}",
             "01",
             "1.",
             "-",
             "tru",
             "\"\x01\"",
             "{} x",
             "{\"a\" 1}",
             "[\"\\x\"]",
             deep64,
             deep65,
             " [1, -2.5e3, true, false, null, {\"k\": \"v\"}, [], {}] ",
             R"({"a\u00e9":"\ud83d\ude00\/\t","n":-0.5E+2,"e":"","x":[[],[{}]]})",
             R"({"a":1,"\u0061":2})",
             R"("\ud83d")",
             R"("\u0000")",
             "\"plain\"",
             "7"}) {
        EXPECT_EQ(outcome_of([&] {
                      tape.parse(text, "doc");
                      return tape_render(tape.root());
                  }),
                  outcome_of([&] { return tree_render(parse_json(text, "doc")); }))
            << text;
    }
}

TEST(JsonTape, FindItemsAndMembersOnlyForTheirKinds) {
    JsonTape tape;
    tape.parse(R"({"a":[1,{"b":2}],"c":{"d":[3]},"e":"s"})", "doc");
    const JsonRef root = tape.root();
    ASSERT_TRUE(root.find("c"));
    EXPECT_FALSE(root.find("b"));  // only the object's own keys
    EXPECT_EQ(root.find("c")->find("d")->size(), 1u);
    const JsonRef a = *root.find("a");
    EXPECT_FALSE(a.find("b"));  // an array has no keys
    EXPECT_EQ(a.members().begin() != a.members().end(), false);
    const JsonRef c = *root.find("c");
    EXPECT_EQ(c.items().begin() != c.items().end(), false);  // an object has no items
    EXPECT_FALSE(root.find("e")->find("s"));
}

TEST(Json, ContainerEndAnyDepthWithoutRecursion) {
    std::string deep(100000, '[');
    deep += std::string(100000, ']');
    EXPECT_EQ(find_json_container_end(deep + ",", 0, "v"), deep.size());
    EXPECT_EQ(find_json_container_end(R"({"a":"}]\"{"} tail)", 0, "v"), 13u);
    EXPECT_EQ(error_of([] { find_json_container_end("{\"a\":[}", 0, "v"); }), "PB103: invalid v");
    EXPECT_EQ(error_of([] { find_json_container_end("{\"a", 0, "v"); }), "PB103: invalid v");
}

TEST(RowLine, ParsesAllParts) {
    std::string line;
    const std::string parent = "public.p";
    append_row_line(line, "public.c", R"({"id":1,"t":"}"})", &parent, "7\n8");
    ASSERT_EQ(line.back(), '\n');
    line.pop_back();
    RowLine row = parse_row_line(line);
    EXPECT_EQ(row.table, "public.c");
    EXPECT_EQ(row.row, R"({"id":1,"t":"}"})");
    EXPECT_EQ(row.parent_table, "public.p");
    EXPECT_EQ(row.parent_key, "7\n8");

    line.clear();
    append_row_line(line, "public.p", "{}", nullptr, "");
    line.pop_back();
    row = parse_row_line(line);
    EXPECT_FALSE(row.parent_table.has_value());
    EXPECT_EQ(row.row, "{}");
}

TEST(RowLine, RejectsMalformedLines) {
    for (const char* bad :
         {R"({"table":"t"})", R"({"row":{}})", R"({"table":1,"row":{}})",
          R"({"table":"t","row":[]})", R"({"table":"t","row":{},"parent":{"table":"p"}})",
          R"({"table":"t","row":{},"x":1})", R"({"table":"t","table":"u","row":{}})",
          R"({"table":"t","row":{}} x)", R"({"table":"t","row":{)"})
        EXPECT_EQ(error_of([&] { parse_row_line(bad); }), "PB103: invalid backup row line") << bad;
}

TEST(LineSplitter, SplitsAcrossChunksWithBoundedBuffer) {
    const std::string data = "one\n\ntwo three\n" + std::string(10000, 'x') + "\nend\n";
    StringSource source(data, 3);
    LineSplitter lines(source, 20000, 5);
    std::vector<std::string> got;
    while (auto line = lines.next()) got.emplace_back(*line);
    ASSERT_EQ(got.size(), 5u);
    EXPECT_EQ(got[1], "");
    EXPECT_EQ(got[3].size(), 10000u);
    EXPECT_EQ(got[4], "end");
    EXPECT_EQ(lines.bytes_consumed(), data.size());
}

TEST(LineSplitter, RejectsLongLinesAndMissingLineEnd) {
    const std::string long_line = std::string(100, 'x') + "\n";
    StringSource long_source(long_line);
    LineSplitter long_lines(long_source, 50, 16);
    EXPECT_EQ(error_of([&] { long_lines.next(); }), "PB103: backup line too long");
    StringSource cut_source("a\nb");
    LineSplitter cut_lines(cut_source);
    EXPECT_EQ(cut_lines.next(), "a");
    EXPECT_EQ(error_of([&] { cut_lines.next(); }), "PB103: backup data is truncated");
}

TEST(BackupHeader, RoundTrips) {
    const BackupHeader h = sample_header();
    const std::string line = header_line(h);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    const BackupHeader back = parse_header_line(line);
    EXPECT_EQ(back.backup_id, h.backup_id);
    EXPECT_EQ(back.label, h.label);
    EXPECT_EQ(back.settings, h.settings);
    ASSERT_EQ(back.tables.size(), 2u);
    EXPECT_EQ(back.tables[1].columns[1].name, "parent_id");
    ASSERT_EQ(back.tables[1].references.size(), 1u);
    EXPECT_EQ(back.tables[1].references[0].parent, "public.parent");
    EXPECT_EQ(back.tables[1].references[0].columns, std::vector<std::string>{"parent_id"});
    EXPECT_EQ(back.tables[1].references[0].parent_columns, std::vector<std::string>{"id"});
    EXPECT_TRUE(back.tables[0].references.empty());
    EXPECT_EQ(back.tables[0].key_columns, std::vector<std::string>{"id"});
}

TEST(BackupHeader, RejectsOtherFormatsAndVersions) {
    std::string line = header_line(sample_header());
    std::string v3 = line;
    v3.replace(v3.find("\"version\":2"), 11, "\"version\":3");
    EXPECT_EQ(error_of([&] { parse_header_line(v3); }), "PB103: unsupported backup format version");
    std::string v0 = line;
    v0.replace(v0.find("\"version\":2"), 11, "\"version\":0");
    EXPECT_EQ(error_of([&] { parse_header_line(v0); }), "PB103: unsupported backup format version");
    EXPECT_EQ(error_of([] { parse_header_line(R"({"format":"other"})"); }),
              "PB103: invalid backup header");
    std::string no_owner = line;
    no_owner.replace(no_owner.find("\"owner\""), 7, "\"ownr\"");
    EXPECT_EQ(error_of([&] { parse_header_line(no_owner); }), "PB103: invalid backup header");
}

// Format 2 records each table's owner; format 1 (1.0's files, some on legal hold) has none
// and stays readable.
TEST(BackupHeader, Format2RecordsTableOwnersAndFormat1StaysReadable) {
    BackupHeader h = sample_header();
    for (BackupTable& t : h.tables) t.owner = "carol";
    const BackupHeader back = parse_header_line(header_line(h));
    EXPECT_EQ(back.version, 2);
    for (const BackupTable& t : back.tables) EXPECT_EQ(t.owner, "carol");
    h.version = 1;
    const std::string v1 = header_line(h);
    EXPECT_EQ(v1.find("\"owner\":\"carol\""), std::string::npos);
    const BackupHeader old = parse_header_line(v1);
    EXPECT_EQ(old.version, 1);
    for (const BackupTable& t : old.tables) EXPECT_EQ(t.owner, "");
    std::string missing = header_line(back);
    missing.replace(missing.find("\"owner\":\"carol\""), 15, "\"ownr\":\"carol\"");
    EXPECT_EQ(error_of([&] { parse_header_line(missing); }), "PB103: invalid backup header");
}

// Format 2 records whether the backup's maker could write each table; format 1 has no such
// flag (its tables read as writable, as 1.0 restored them).
TEST(BackupHeader, Format2RecordsWhetherTablesWereWritable) {
    BackupHeader h = sample_header();
    ASSERT_GE(h.tables.size(), 2u);
    h.tables[1].writable = false;
    const std::string line = header_line(h);
    const BackupHeader back = parse_header_line(line);
    EXPECT_TRUE(back.tables[0].writable);
    EXPECT_FALSE(back.tables[1].writable);
    std::string missing = line;
    missing.replace(missing.find("\"writable\":true"), 15, "\"writabl\":true");
    EXPECT_EQ(error_of([&] { parse_header_line(missing); }), "PB103: invalid backup header");
    std::string not_bool = line;
    not_bool.replace(not_bool.find("\"writable\":true"), 15, "\"writable\":\"t\"");
    EXPECT_EQ(error_of([&] { parse_header_line(not_bool); }), "PB103: invalid backup header");
    h.version = 1;
    const BackupHeader old = parse_header_line(header_line(h));
    for (const BackupTable& t : old.tables) EXPECT_TRUE(t.writable);
}

// A row a delete changed (SET NULL / SET DEFAULT) names the columns; a removed row does not.
TEST(RowLine, ChangedColumns) {
    RowLineFormat format("public.t", nullptr);
    std::string out;
    const std::string changed = R"(["a","b c"])";
    format.append(out, R"({"a":null})", nullptr, &changed);
    EXPECT_EQ(out, R"({"table":"public.t","row":{"a":null},"parent":null,"changed":["a","b c"]})"
                   "\n");
    const RowLine row = parse_row_line(out.substr(0, out.size() - 1));
    ASSERT_TRUE(row.changed.has_value());
    EXPECT_EQ(*row.changed, (std::vector<std::string>{"a", "b c"}));
    EXPECT_FALSE(parse_row_line(R"({"table":"t","row":{},"parent":null})").changed.has_value());
    for (const char* bad :
         {R"({"table":"t","row":{},"changed":[]})", R"({"table":"t","row":{},"changed":[1]})",
          R"({"table":"t","row":{},"changed":"a"})",
          R"({"table":"t","row":{},"changed":["a"],"changed":["b"]})"})
        EXPECT_EQ(error_of([&] { parse_row_line(bad); }).substr(0, 6), "PB103:") << bad;
}

TEST(BackupTrailer, RoundTrips) {
    BackupTrailer t{{{"a", 1}, {"b", 0}}, 1, "abc"};
    const BackupTrailer back = parse_trailer_line(trailer_line(t));
    EXPECT_TRUE(is_trailer_line(trailer_line(t)));
    EXPECT_EQ(back.row_counts, t.row_counts);
    EXPECT_EQ(back.total_rows, 1);
    EXPECT_EQ(back.body_sha256, "abc");
    EXPECT_EQ(error_of([] {
                  parse_trailer_line(
                      R"({"trailer":true,"row_counts":{},"total_rows":-1,"body_sha256":""})");
              }),
              "PB103: invalid backup trailer");
}

TEST(BackupStream, ReadsAVerifiedBackup) {
    const std::string body = sample_body(100);
    EXPECT_EQ(read_all(body), 300);
    EXPECT_EQ(read_all(body, 13), 300);
    StringSource source(body);
    BackupStreamReader reader(source, std::make_unique<FnvHasher>());
    EXPECT_EQ(reader.header().owner, "alice");
    auto first = reader.next_row();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->table, "public.parent");
    auto second = reader.next_row();
    EXPECT_EQ(second->parent_key, "0");
    while (reader.next_row()) {
    }
    ASSERT_TRUE(reader.trailer());
    EXPECT_EQ(reader.trailer()->total_rows, 300);
}

TEST(BackupStream, DetectsEveryKindOfDamage) {
    EXPECT_EQ(error_of([] { read_all(sample_body(3, false)); }), "PB103: backup data is truncated");
    EXPECT_EQ(error_of([] { read_all(""); }), "PB103: backup data is truncated");
    EXPECT_EQ(error_of([] { read_all(sample_body(3, true, 1)); }),
              "PB103: backup row count mismatch");
    std::string body = sample_body(3);
    EXPECT_EQ(error_of([&] { read_all(body + "{}\n"); }), "PB103: invalid backup data");
    std::string tampered = body;
    tampered[tampered.find("\"name\":\"p\\n") + 8] = 'q';
    EXPECT_EQ(error_of([&] { read_all(tampered); }), "PB103: backup checksum mismatch");
    std::string unknown = body;
    unknown.replace(unknown.find("{\"table\":\"public.child\""), 23, "{\"table\":\"public.other\"");
    EXPECT_EQ(error_of([&] { read_all(unknown); }), "PB103: invalid backup row line");
}

TEST(BackupStream, CompressedEndToEnd) {
    const std::string body = sample_body(5000);
    const std::string packed = compress(body, {1, 0});
    StringSource file(packed, 1000);
    ZstdReader zstd(file);
    BackupStreamReader reader(zstd, std::make_unique<FnvHasher>());
    std::int64_t n = 0;
    while (reader.next_row()) ++n;
    EXPECT_EQ(n, 15000);
}

TEST(RowLineFormat, MatchesAppendRowLine) {
    const std::string parent = "public.\"P\"";
    RowLineFormat with_parent("public.c", &parent);
    RowLineFormat without_parent("public.c", nullptr);
    std::string a, b;
    const std::string_view key = "k\"1";
    with_parent.append(a, "{\"x\":1}", &key);
    append_row_line(b, "public.c", "{\"x\":1}", &parent, key);
    EXPECT_EQ(a, b);
    a.clear();
    b.clear();
    without_parent.append(a, "{}", nullptr);
    with_parent.append(a, "{}", nullptr);  // a row reached without a parent key
    append_row_line(b, "public.c", "{}", nullptr, "");
    append_row_line(b, "public.c", "{}", nullptr, "");
    EXPECT_EQ(a, b);
}

TEST(Utf8, FindsTheFirstInvalidByte) {
    EXPECT_EQ(find_invalid_utf8(""), std::string_view::npos);
    EXPECT_EQ(find_invalid_utf8("plain ascii, longer than eight bytes"), std::string_view::npos);
    EXPECT_EQ(find_invalid_utf8("\u00e9t\u00e9 \u65e5\u672c \U0001F600"), std::string_view::npos);
    EXPECT_EQ(find_invalid_utf8("abcdefgh\x80"), 8u);      // a lone continuation byte
    EXPECT_EQ(find_invalid_utf8("a\xC3"), 1u);             // cut short
    EXPECT_EQ(find_invalid_utf8("a\xC0\xAF"), 1u);         // overlong '/'
    EXPECT_EQ(find_invalid_utf8("\xE0\x80\xAF"), 0u);      // overlong, three bytes
    EXPECT_EQ(find_invalid_utf8("ok \xED\xA0\x80"), 3u);   // a UTF-16 surrogate
    EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);  // above U+10FFFF
    EXPECT_EQ(find_invalid_utf8("\xE2\x82\xAC\xFF"), 3u);  // 0xFF never appears
}

// What the structure-aware fuzz target (test/fuzz/fuzz_backup_semantic.cpp) found in its
// first seconds: raw bytes that are not UTF-8 got through the reader to the rows.
TEST(BackupStream, RejectsTextThatIsNotUtf8) {
    std::string body = sample_body(2, false);
    body.replace(body.find("\"name\":\"p") + 8, 1, "p\xE9");
    BackupTrailer t{{{"public.parent", 2}, {"public.child", 4}}, 6, fnv(body)};
    body += trailer_line(t) + "\n";
    EXPECT_EQ(error_of([&] { read_all(body); }), "PB103: backup data is not valid UTF-8");
}

TEST(BackupStream, RejectsTrailerCountsOfUnlistedTables) {
    const std::string body = sample_body(2, false);
    BackupTrailer t{{{"public.parent", 2}, {"public.child", 4}, {"public.other", 0}}, 6, fnv(body)};
    EXPECT_EQ(read_all(body + trailer_line(t) + "\n"), 6);  // a zero count says nothing
    t.row_counts.back().second = 1;
    t.row_counts[1].second = 3;  // the total still matches
    EXPECT_EQ(error_of([&] { read_all(body + trailer_line(t) + "\n"); }),
              "PB103: backup row count mismatch");
}

// A small zstd bomb whose first line never ends: the reader stops at the header limit
// instead of buffering a line of up to 1 GiB (and a 2 GiB buffer behind it).
TEST(BackupStream, CapsTheHeaderLine) {
    const std::string bomb = compress(std::string(kMaxHeaderLine + (1 << 16), ' '));
    EXPECT_LT(bomb.size(), 64u * 1024);
    StringSource source(bomb);
    ZstdReader zstd(source);
    BackupStreamReader reader(zstd, std::make_unique<FnvHasher>());
    EXPECT_EQ(error_of([&] { reader.header(); }), "PB103: backup header too long");
}

// A source that returns a few bytes per read must not make the buffer grow.
TEST(LineSplitter, TinyReadsKeepTheBufferSmall) {
    std::string text;
    for (int i = 0; i < 20000; ++i) text += "line " + std::to_string(i) + "\n";
    StringSource source(text, 7);
    LineSplitter lines(source, 1000, 64);
    int n = 0;
    while (lines.next()) ++n;
    EXPECT_EQ(n, 20000);
}

TEST(RowValueReader, ReadsTheWantedColumnsOfEachRow) {
    RowValueReader reader({"id", "body", "gone", "note"});
    reader.read(R"({"id": "1", "skip": {"a": [1, 2]}, "body": "a\"b\\c\n\u00e9", "note": null})");
    ASSERT_NE(reader.value(0), nullptr);
    EXPECT_EQ(*reader.value(0), "1");
    ASSERT_NE(reader.value(1), nullptr);
    EXPECT_EQ(*reader.value(1), "a\"b\\c\n\xc3\xa9");
    EXPECT_EQ(reader.value(2), nullptr);  // absent
    EXPECT_EQ(reader.value(3), nullptr);  // null
    // The next row starts afresh: nothing of the last one is left.
    reader.read(R"({"body":"x","gone":"2"})");
    EXPECT_EQ(reader.value(0), nullptr);
    EXPECT_EQ(*reader.value(1), "x");
    EXPECT_EQ(*reader.value(2), "2");
    reader.read("{}");
    EXPECT_EQ(reader.value(1), nullptr);
}

TEST(RowValueReader, RefusesWhatParseJsonRefuses) {
    RowValueReader reader({"id"});
    const auto detail_of = [&](std::string_view row) {
        try {
            reader.read(row);
        } catch (const Error& e) {
            EXPECT_STREQ(e.sqlstate(), sqlstate::kBackupCorrupt);
            EXPECT_STREQ(e.what(), "invalid backup row");
            return e.detail();
        }
        return std::string("ok");
    };
    EXPECT_EQ(detail_of(R"({"id": "1", "id": "2"})"), "duplicate key \"id\" at byte 17");
    EXPECT_EQ(detail_of(R"({"x": 1, "x": 2})"), "duplicate key \"x\" at byte 13");
    EXPECT_EQ(detail_of(R"({"id": 1})"), "A value of column \"id\" is neither a string nor null.");
    EXPECT_EQ(detail_of(R"({"id": true})"),
              "A value of column \"id\" is neither a string nor null.");
    EXPECT_EQ(detail_of(R"(["id"])"), "A row is not an object.");
    EXPECT_EQ(detail_of(R"({"id": "1"} x)"), "trailing characters at byte 12");
    EXPECT_EQ(detail_of(R"({"id": "1")"), "expected '}' at byte 10");
    EXPECT_EQ(detail_of(R"({"id": nul})"), "unexpected token at byte 7");
    EXPECT_EQ(detail_of(R"({"id": "a\q"})"), "invalid escape at byte 11");
    // A syntax error after a wanted non-string value is the error, as in parse_json.
    EXPECT_EQ(detail_of(R"({"id": 1, })"), "expected '\"' at byte 10");
    std::string deep = R"({"x": )" + std::string(100, '[') + std::string(100, ']') + "}";
    EXPECT_EQ(detail_of(deep).substr(0, 18), "nesting too deep a");
    // Each refusal matches parse_json's on the same text.
    for (std::string_view row : {R"({"id": "1", "id": "2"})", R"({"id": "1")", R"({"id": nul})"}) {
        std::string expected;
        try {
            parse_json(row, "backup row");
        } catch (const Error& e) {
            expected = e.detail();
        }
        EXPECT_EQ(detail_of(row), expected);
    }
}
