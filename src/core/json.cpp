#include "core/json.hpp"

#include "core/error.hpp"

#include <cstdio>
#include <cstring>

namespace batchguard {

void append_json_string(std::string& out, std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.push_back('"');
    std::size_t run = 0;  // start of the bytes copied unchanged
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
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
    }
    out.append(text, run, text.size() - run);
    out.push_back('"');
}

const JsonValue* JsonValue::find(std::string_view key) const {
    for (std::size_t i = 0; i < keys.size(); ++i)
        if (keys[i] == key) return &values[i];
    return nullptr;
}

namespace {

constexpr int kMaxDepth = 64;

class Parser {
  public:
    Parser(std::string_view text, const char* what) : s_(text), what_(what) {}

    [[noreturn]] void fail(const std::string& why) const {
        throw Error(sqlstate::kBackupCorrupt, std::string("invalid ") + what_,
                    why + " at byte " + std::to_string(pos_));
    }

    void ws() {
        while (pos_ < s_.size() &&
               (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
            ++pos_;
    }

    bool at_end() const { return pos_ >= s_.size(); }
    char peek() const { return at_end() ? '\0' : s_[pos_]; }
    std::size_t pos() const { return pos_; }
    void set_pos(std::size_t p) { pos_ = p; }

    void expect(char c) {
        if (peek() != c) fail(std::string("expected '") + c + "'");
        ++pos_;
    }

    void literal(std::string_view word) {
        if (s_.substr(pos_, word.size()) != word) fail("unexpected token");
        pos_ += word.size();
    }

    // Parses (into `out` when not null) or only validates a value.
    void value(JsonValue* out, int depth) {
        if (depth >= kMaxDepth) fail("nesting too deep");
        ws();
        switch (peek()) {
            case '{':
                object(out, depth);
                break;
            case '[':
                array(out, depth);
                break;
            case '"':
                if (out) {
                    out->kind = JsonValue::Kind::kString;
                    string(&out->text);
                } else {
                    string(nullptr);
                }
                break;
            case 't':
                literal("true");
                if (out) out->kind = JsonValue::Kind::kBool, out->boolean = true;
                break;
            case 'f':
                literal("false");
                if (out) out->kind = JsonValue::Kind::kBool, out->boolean = false;
                break;
            case 'n':
                literal("null");
                if (out) out->kind = JsonValue::Kind::kNull;
                break;
            default:
                number(out);
        }
    }

    void string(std::string* out) {
        expect('"');
        for (;;) {
            if (at_end()) fail("unterminated string");
            const auto c = static_cast<unsigned char>(s_[pos_]);
            if (c == '"') {
                ++pos_;
                return;
            }
            if (c < 0x20) fail("control character in string");
            if (c == '\\') {
                ++pos_;
                escape(out);
                continue;
            }
            // Copy a run of plain bytes at once.
            std::size_t end = pos_ + 1;
            while (end < s_.size()) {
                const auto d = static_cast<unsigned char>(s_[end]);
                if (d == '"' || d == '\\' || d < 0x20) break;
                ++end;
            }
            if (out) out->append(s_, pos_, end - pos_);
            pos_ = end;
        }
    }

    void escape(std::string* out) {
        if (at_end()) fail("unterminated string");
        const char c = s_[pos_++];
        char plain = 0;
        switch (c) {
            case '"':
                plain = '"';
                break;
            case '\\':
                plain = '\\';
                break;
            case '/':
                plain = '/';
                break;
            case 'b':
                plain = '\b';
                break;
            case 'f':
                plain = '\f';
                break;
            case 'n':
                plain = '\n';
                break;
            case 'r':
                plain = '\r';
                break;
            case 't':
                plain = '\t';
                break;
            case 'u':
                break;
            default:
                fail("invalid escape");
        }
        if (c != 'u') {
            if (out) out->push_back(plain);
            return;
        }
        if (const char* problem = decode_unicode_escape(s_, pos_, out)) fail(problem);
    }

    void digits() {
        if (!(peek() >= '0' && peek() <= '9')) fail("invalid number");
        while (peek() >= '0' && peek() <= '9') ++pos_;
    }

    void number(JsonValue* out) {
        const std::size_t start = pos_;
        if (peek() == '-') ++pos_;
        if (peek() == '0') {
            ++pos_;
        } else {
            digits();
        }
        if (peek() == '.') {
            ++pos_;
            digits();
        }
        if (peek() == 'e' || peek() == 'E') {
            ++pos_;
            if (peek() == '+' || peek() == '-') ++pos_;
            digits();
        }
        if (out) {
            out->kind = JsonValue::Kind::kNumber;
            out->text.assign(s_, start, pos_ - start);
        }
    }

    void array(JsonValue* out, int depth) {
        expect('[');
        if (out) out->kind = JsonValue::Kind::kArray;
        ws();
        if (peek() == ']') {
            ++pos_;
            return;
        }
        for (;;) {
            if (out) {
                out->items.emplace_back();
                value(&out->items.back(), depth + 1);
            } else {
                value(nullptr, depth + 1);
            }
            ws();
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            expect(']');
            return;
        }
    }

    void object(JsonValue* out, int depth) {
        expect('{');
        if (out) out->kind = JsonValue::Kind::kObject;
        ws();
        if (peek() == '}') {
            ++pos_;
            return;
        }
        for (;;) {
            ws();
            std::string key;
            string(out ? &key : nullptr);
            ws();
            expect(':');
            if (out) {
                if (out->find(key) != nullptr) fail("duplicate key \"" + key + "\"");
                out->keys.push_back(std::move(key));
                out->values.emplace_back();
                value(&out->values.back(), depth + 1);
            } else {
                value(nullptr, depth + 1);
            }
            ws();
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            expect('}');
            return;
        }
    }

  private:
    std::string_view s_;
    const char* what_;
    std::size_t pos_ = 0;
};

}  // namespace

JsonValue parse_json(std::string_view text, const char* what) {
    Parser p(text, what);
    JsonValue v;
    p.value(&v, 0);
    p.ws();
    if (!p.at_end()) p.fail("trailing characters");
    return v;
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

RowLine parse_row_line(std::string_view line) {
    static constexpr const char* kWhat = "backup row line";
    Parser p(line, kWhat);
    RowLine result;
    bool have_table = false, have_row = false, have_parent = false;
    p.ws();
    p.expect('{');
    for (;;) {
        p.ws();
        std::string key;
        p.string(&key);
        p.ws();
        p.expect(':');
        p.ws();
        if (key == "table" && !have_table) {
            if (p.peek() != '"') p.fail("\"table\" must be a string");
            p.string(&result.table);
            have_table = true;
        } else if (key == "row" && !have_row) {
            if (p.peek() != '{') p.fail("\"row\" must be an object");
            const std::size_t start = p.pos();
            const std::size_t end = find_json_container_end(line, start, kWhat);
            result.row = line.substr(start, end - start);
            p.set_pos(end);
            have_row = true;
        } else if (key == "parent" && !have_parent) {
            have_parent = true;
            if (p.peek() == 'n') {
                p.literal("null");
            } else {
                // {"table": string, "key": string}, in any order, nothing else.
                static constexpr const char* kParentShape =
                    "\"parent\" must be null or {\"table\": string, \"key\": string}";
                std::string parent_table, parent_key;
                bool have_parent_table = false, have_parent_key = false;
                p.expect('{');
                for (;;) {
                    p.ws();
                    std::string name;
                    p.string(&name);
                    p.ws();
                    p.expect(':');
                    p.ws();
                    if (p.peek() != '"') p.fail(kParentShape);
                    if (name == "table" && !have_parent_table) {
                        p.string(&parent_table);
                        have_parent_table = true;
                    } else if (name == "key" && !have_parent_key) {
                        p.string(&parent_key);
                        have_parent_key = true;
                    } else {
                        p.fail(kParentShape);
                    }
                    p.ws();
                    if (p.peek() == ',') {
                        p.expect(',');
                        continue;
                    }
                    p.expect('}');
                    break;
                }
                if (!have_parent_table || !have_parent_key) p.fail(kParentShape);
                result.parent_table = std::move(parent_table);
                result.parent_key = std::move(parent_key);
            }
        } else {
            p.fail("unexpected or repeated key \"" + key + "\"");
        }
        p.ws();
        if (p.peek() == ',') {
            p.expect(',');
            continue;
        }
        p.expect('}');
        break;
    }
    p.ws();
    if (!p.at_end()) p.fail("trailing characters");
    if (!have_table || !have_row) p.fail("\"table\" and \"row\" are required");
    return result;
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
