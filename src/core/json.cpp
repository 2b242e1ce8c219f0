#include "core/json.hpp"

#include "core/json_parser.hpp"

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

JsonValue parse_json(std::string_view text, const char* what) {
    JsonParser p(text, what);
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
