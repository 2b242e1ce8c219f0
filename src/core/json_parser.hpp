// The validating JSON parser behind parse_json, for the core's other line formats (the
// backup row line in backup_format.cpp): a cursor over one text that throws
// Error(kBackupCorrupt) naming `what` and the byte offset on anything malformed.
#pragma once
#include "core/pure.hpp"

#include "core/error.hpp"
#include "core/json.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace batchguard {

// Deeper nesting is refused (the parser recurses).
inline constexpr int kMaxJsonDepth = 64;

// Bytes that stand for themselves inside a JSON string: not '"', '\\' or a control
// character.
inline constexpr struct PlainStringBytes {
    bool plain[256];
    constexpr PlainStringBytes() : plain() {
        for (int c = 0x20; c < 256; ++c) plain[c] = c != '"' && c != '\\';
    }
    constexpr bool operator[](unsigned char c) const { return plain[c]; }
} kPlainStringByte;

class JsonParser {
  public:
    JsonParser(std::string_view text, const char* what) : s_(text), what_(what) {}

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
    std::string_view text() const { return s_; }
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
        if (depth >= kMaxJsonDepth) fail("nesting too deep");
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
            // Copy a run of plain bytes at once. (One table lookup per byte instead of three
            // comparisons: a fuzzer traces every comparison, and the header's strings are
            // most of its bytes.)
            std::size_t end = pos_ + 1;
            while (end < s_.size() && kPlainStringByte[static_cast<unsigned char>(s_[end])]) ++end;
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

}  // namespace batchguard
