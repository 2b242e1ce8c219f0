#include "core/json.hpp"

#include "core/json_parser.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace batchguard {

namespace {

std::uint64_t load_word(const char* p) {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    return w;
}

// Whether any byte of w is below 0x20, '"' or '\\' (the classic "has a zero byte" test:
// exact about whether one exists, whatever the byte order).
bool needs_escape(std::uint64_t w) {
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
    const auto has_zero = [](std::uint64_t x) { return (x - kOnes) & ~x & kHigh; };
    const std::uint64_t below_space = (w - kOnes * 0x20) & ~w & kHigh;
    return (below_space | has_zero(w ^ (kOnes * '"')) | has_zero(w ^ (kOnes * '\\'))) != 0;
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.push_back('"');
    std::size_t run = 0;  // start of the bytes copied unchanged
    std::size_t i = 0;
    for (;;) {
        // Eight bytes at a time while none of them needs escaping (most text has no
        // escapes at all); a word that has one is then looked at byte by byte.
        while (i + 8 <= text.size() && !needs_escape(load_word(text.data() + i))) i += 8;
        if (i == text.size()) break;
        const std::size_t word_end = std::min(i + 8, text.size());
        bool escaped = false;
        for (; i < word_end; ++i) {
            const auto c = static_cast<unsigned char>(text[i]);
            if (c >= 0x20 && c != '"' && c != '\\') continue;
            escaped = true;
            break;
        }
        if (!escaped) continue;
        const auto c = static_cast<unsigned char>(text[i]);
        out.append(text, run, i - run);
        run = i + 1;
        switch (c) {
            case '"':
                out.append("\\\"");
                break;
            case '\\':
                out.append("\\\\");
                break;
            case '\n':
                out.append("\\n");
                break;
            case '\r':
                out.append("\\r");
                break;
            case '\t':
                out.append("\\t");
                break;
            case '\b':
                out.append("\\b");
                break;
            case '\f':
                out.append("\\f");
                break;
            default:
                out.append("\\u00");
                out.push_back(kHex[c >> 4]);
                out.push_back(kHex[c & 0xF]);
        }
        ++i;
    }
    out.append(text, run, text.size() - run);
    out.push_back('"');
}

const JsonValue* JsonValue::find(std::string_view key) const {
    for (std::size_t i = 0; i < keys.size(); ++i)
        if (keys[i] == key) return &values[i];
    return nullptr;
}

JsonValue parse_json(std::string_view text, const char* what) {
    JsonParser p(text, what);
    JsonValue v;
    p.value(&v, 0);
    p.ws();
    if (!p.at_end()) p.fail("trailing characters");
    return v;
}

// Builds a JsonTape with JsonParser's primitives, in the same order of checks as
// JsonParser::value (the same error for the same text).
class JsonTapeBuilder {
  public:
    JsonTapeBuilder(JsonTape& tape, std::string_view text, const char* what)
        : tape_(tape), p_(text, what) {}

    void document() {
        value(0);
        p_.ws();
        if (!p_.at_end()) p_.fail("trailing characters");
    }

  private:
    using Kind = JsonValue::Kind;

    std::uint32_t add(Kind kind) {
        tape_.nodes_.emplace_back();
        tape_.nodes_.back().kind = kind;
        return static_cast<std::uint32_t>(tape_.nodes_.size() - 1);
    }
    void close(std::uint32_t node) {
        tape_.nodes_[node].end = static_cast<std::uint32_t>(tape_.nodes_.size());
    }
    // A string node, its decoded text in the arena.
    std::uint32_t string(Kind kind) {
        const std::uint32_t node = add(kind);
        const std::size_t start = tape_.arena_.size();
        p_.string(&tape_.arena_);
        tape_.nodes_[node].offset = static_cast<std::uint32_t>(start);
        tape_.nodes_[node].length = static_cast<std::uint32_t>(tape_.arena_.size() - start);
        close(node);
        return node;
    }
    void boolean(bool value) {
        const std::uint32_t node = add(Kind::kBool);
        tape_.nodes_[node].boolean = value;
        close(node);
    }
    std::string_view text(std::uint32_t node) const {
        const JsonTape::Node& n = tape_.nodes_[node];
        return std::string_view(tape_.arena_).substr(n.offset, n.length);
    }

    void value(int depth) {
        if (depth >= kMaxJsonDepth) p_.fail("nesting too deep");
        p_.ws();
        switch (p_.peek()) {
            case '{':
                object(depth);
                break;
            case '[':
                array(depth);
                break;
            case '"':
                string(Kind::kString);
                break;
            case 't':
                p_.literal("true");
                boolean(true);
                break;
            case 'f':
                p_.literal("false");
                boolean(false);
                break;
            case 'n':
                p_.literal("null");
                close(add(Kind::kNull));
                break;
            default: {
                const std::size_t start = p_.pos();
                p_.number(nullptr);
                const std::uint32_t node = add(Kind::kNumber);
                tape_.nodes_[node].offset = static_cast<std::uint32_t>(tape_.arena_.size());
                tape_.nodes_[node].length = static_cast<std::uint32_t>(p_.pos() - start);
                tape_.arena_.append(p_.text(), start, p_.pos() - start);
                close(node);
            }
        }
    }

    void array(int depth) {
        p_.expect('[');
        const std::uint32_t node = add(Kind::kArray);
        p_.ws();
        if (p_.peek() == ']') {
            p_.expect(']');
            close(node);
            return;
        }
        for (;;) {
            value(depth + 1);
            ++tape_.nodes_[node].count;
            p_.ws();
            if (p_.peek() == ',') {
                p_.expect(',');
                continue;
            }
            p_.expect(']');
            close(node);
            return;
        }
    }

    void object(int depth) {
        p_.expect('{');
        const std::uint32_t node = add(Kind::kObject);
        p_.ws();
        if (p_.peek() == '}') {
            p_.expect('}');
            close(node);
            return;
        }
        for (;;) {
            p_.ws();
            const std::uint32_t key = string(Kind::kString);
            p_.ws();
            p_.expect(':');
            // The keys before this one: each followed by its value, whose end is the
            // next key.
            for (std::uint32_t k = node + 1; k < key; k = tape_.nodes_[k + 1].end)
                if (text(k) == text(key))
                    p_.fail("duplicate key \"" + std::string(text(key)) + "\"");
            value(depth + 1);
            ++tape_.nodes_[node].count;
            p_.ws();
            if (p_.peek() == ',') {
                p_.expect(',');
                continue;
            }
            p_.expect('}');
            close(node);
            return;
        }
    }

    JsonTape& tape_;
    JsonParser p_;
};

void JsonTape::parse(std::string_view text, const char* what) {
    nodes_.clear();
    arena_.clear();
    JsonTapeBuilder(*this, text, what).document();
}

void JsonTape::trim() {
    constexpr std::size_t kKeep = std::size_t{1} << 20;
    if (arena_.capacity() > kKeep) std::string().swap(arena_);
    if (nodes_.capacity() * sizeof(Node) > kKeep) std::vector<Node>().swap(nodes_);
}

JsonValue::Kind JsonRef::kind() const { return tape_->nodes_[index_].kind; }
bool JsonRef::boolean() const { return tape_->nodes_[index_].boolean; }
std::string_view JsonRef::text() const {
    const JsonTape::Node& n = tape_->nodes_[index_];
    return std::string_view(tape_->arena_).substr(n.offset, n.length);
}
std::size_t JsonRef::size() const { return tape_->nodes_[index_].count; }

JsonRef::Iterator& JsonRef::Iterator::operator++() {
    // An object's member is a key node followed by its value: step over both.
    index_ = tape_->nodes_[members_ ? index_ + 1 : index_].end;
    return *this;
}

JsonRef::Range JsonRef::items() const {
    const JsonTape::Node& n = tape_->nodes_[index_];
    const std::uint32_t last = n.kind == JsonValue::Kind::kArray ? n.end : index_ + 1;
    return {Iterator(tape_, index_ + 1, false), Iterator(tape_, last, false)};
}

JsonRef::Range JsonRef::members() const {
    const JsonTape::Node& n = tape_->nodes_[index_];
    const std::uint32_t last = n.kind == JsonValue::Kind::kObject ? n.end : index_ + 1;
    return {Iterator(tape_, index_ + 1, true), Iterator(tape_, last, true)};
}

JsonRef JsonRef::value() const { return JsonRef(tape_, index_ + 1); }

std::optional<JsonRef> JsonRef::find(std::string_view key) const {
    const JsonTape::Node& n = tape_->nodes_[index_];
    if (n.kind != JsonValue::Kind::kObject) return std::nullopt;
    for (std::uint32_t k = index_ + 1; k < n.end; k = tape_->nodes_[k + 1].end)
        if (JsonRef(tape_, k).text() == key) return JsonRef(tape_, k + 1);
    return std::nullopt;
}

std::size_t find_json_container_end(std::string_view text, std::size_t pos, const char* what) {
    auto fail = [&](const char* why) -> void {
        throw Error(sqlstate::kBackupCorrupt, std::string("invalid ") + what,
                    std::string(why) + " at byte " + std::to_string(pos));
    };
    if (pos >= text.size() || (text[pos] != '{' && text[pos] != '['))
        fail("expected an object or an array");
    // The closing bracket each open container expects (reused: no allocation per call).
    static thread_local std::string open;
    open.clear();
    const char* data = text.data();
    const std::size_t size = text.size();
    while (pos < size) {
        const char c = data[pos++];
        switch (c) {
            case '{':
                open.push_back('}');
                break;
            case '[':
                open.push_back(']');
                break;
            case '}':
            case ']':
                if (open.back() != c) fail("mismatched bracket");
                open.pop_back();
                if (open.empty()) return pos;
                break;
            case '"':
                // From quote to quote; a quote after an odd number of backslashes is escaped.
                for (;;) {
                    const void* q = std::memchr(data + pos, '"', size - pos);
                    if (q == nullptr) fail("unterminated string");
                    const std::size_t at =
                        static_cast<std::size_t>(static_cast<const char*>(q) - data);
                    std::size_t slashes = 0;
                    while (at - slashes > pos && data[at - slashes - 1] == '\\') ++slashes;
                    pos = at + 1;
                    if (slashes % 2 == 0) break;
                }
                break;
            default:
                break;
        }
    }
    fail("unterminated value");
    return pos;
}

const char* decode_unicode_escape(std::string_view text, std::size_t& pos, std::string* out) {
    const auto hex4 = [&](unsigned& value) {
        if (pos + 4 > text.size()) return "truncated \\u escape";
        value = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = text[pos++];
            value <<= 4;
            if (c >= '0' && c <= '9')
                value |= static_cast<unsigned>(c - '0');
            else if (c >= 'a' && c <= 'f')
                value |= static_cast<unsigned>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                value |= static_cast<unsigned>(c - 'A' + 10);
            else
                return "invalid \\u escape";
        }
        return static_cast<const char*>(nullptr);
    };
    unsigned code = 0;
    if (const char* problem = hex4(code)) return problem;
    if (code >= 0xD800 && code <= 0xDBFF) {
        if (text.substr(pos, 2) != "\\u") return "unpaired surrogate";
        pos += 2;
        unsigned low = 0;
        if (const char* problem = hex4(low)) return problem;
        if (low < 0xDC00 || low > 0xDFFF) return "unpaired surrogate";
        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    } else if (code >= 0xDC00 && code <= 0xDFFF) {
        return "unpaired surrogate";
    }
    if (code == 0) return "\\u0000 is not allowed";
    if (!out) return nullptr;
    if (code < 0x80) {
        out->push_back(static_cast<char>(code));
    } else if (code < 0x800) {
        out->push_back(static_cast<char>(0xC0 | (code >> 6)));
        out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else if (code < 0x10000) {
        out->push_back(static_cast<char>(0xE0 | (code >> 12)));
        out->push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
        out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else {
        out->push_back(static_cast<char>(0xF0 | (code >> 18)));
        out->push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
        out->push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
        out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
    }
    return nullptr;
}

}  // namespace batchguard
