#include "core/json_events.hpp"

#include "core/error.hpp"
#include "core/json.hpp"

#include <cstring>
#include <limits>

namespace batchguard {

namespace {

class EventParser {
  public:
    EventParser(std::string_view s, const char* what, std::vector<JsonEvent>& events,
                std::string& arena, std::vector<char>& open)
        : s_(s), what_(what), events_(events), arena_(arena), open_(open) {}

    [[noreturn]] void fail(const char* why) const {
        throw Error(sqlstate::kBackupCorrupt, std::string("invalid ") + what_,
                    std::string(why) + " at byte " + std::to_string(pos_));
    }

    void ws() {
        while (pos_ < s_.size() &&
               (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
            ++pos_;
    }
    char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
    void expect(char c) {
        if (peek() != c) fail("unexpected character");
        ++pos_;
    }

    void push(JsonEvent::Kind kind, std::uint32_t offset = 0, std::uint32_t length = 0) {
        JsonEvent e;
        e.kind = kind;
        e.in_array = !open_.empty() && open_.back() == '[';
        e.offset = offset;
        e.length = length;
        events_.push_back(e);
    }

    std::uint32_t arena_offset() const { return static_cast<std::uint32_t>(arena_.size()); }

    // Decodes a string literal into the arena; returns its length.
    std::uint32_t string() {
        expect('"');
        const std::size_t start = arena_.size();
        for (;;) {
            // Copy the plain run up to the next quote, backslash or control character.
            std::size_t end = pos_;
            while (end < s_.size()) {
                const auto c = static_cast<unsigned char>(s_[end]);
                if (c == '"' || c == '\\' || c < 0x20) break;
                ++end;
            }
            arena_.append(s_, pos_, end - pos_);
            pos_ = end;
            if (pos_ >= s_.size()) fail("unterminated string");
            const char c = s_[pos_++];
            if (c == '"') break;
            if (c != '\\') fail("control character in string");
            escape();
        }
        return static_cast<std::uint32_t>(arena_.size() - start);
    }

    void escape() {
        if (pos_ >= s_.size()) fail("unterminated string");
        const char c = s_[pos_++];
        switch (c) {
            case '"':
                arena_.push_back('"');
                return;
            case '\\':
                arena_.push_back('\\');
                return;
            case '/':
                arena_.push_back('/');
                return;
            case 'b':
                arena_.push_back('\b');
                return;
            case 'f':
                arena_.push_back('\f');
                return;
            case 'n':
                arena_.push_back('\n');
                return;
            case 'r':
                arena_.push_back('\r');
                return;
            case 't':
                arena_.push_back('\t');
                return;
            case 'u':
                break;
            default:
                fail("invalid escape");
        }
        if (const char* problem = decode_unicode_escape(s_, pos_, &arena_)) fail(problem);
    }

    void digits() {
        if (!(peek() >= '0' && peek() <= '9')) fail("invalid number");
        while (peek() >= '0' && peek() <= '9') ++pos_;
    }

    void number() {
        const std::size_t start = pos_;
        if (peek() == '-') ++pos_;
        if (peek() == '0')
            ++pos_;
        else
            digits();
        if (peek() == '.') {
            ++pos_;
            digits();
        }
        if (peek() == 'e' || peek() == 'E') {
            ++pos_;
            if (peek() == '+' || peek() == '-') ++pos_;
            digits();
        }
        const std::uint32_t offset = arena_offset();
        arena_.append(s_, start, pos_ - start);
        arena_.push_back('\0');
        push(JsonEvent::Kind::kNumber, offset, static_cast<std::uint32_t>(pos_ - start));
    }

    void literal(std::string_view word, JsonEvent::Kind kind) {
        if (s_.substr(pos_, word.size()) != word) fail("unexpected token");
        pos_ += word.size();
        push(kind);
    }

    // One value at the current position; containers are opened here and closed by run().
    void value() {
        ws();
        switch (peek()) {
            case '{':
                ++pos_;
                push(JsonEvent::Kind::kBeginObject);
                open_.push_back('{');
                expect_key_or_end_ = true;
                return;
            case '[':
                ++pos_;
                push(JsonEvent::Kind::kBeginArray);
                open_.push_back('[');
                expect_value_or_end_ = true;
                return;
            case '"': {
                const std::uint32_t offset = arena_offset();
                const std::uint32_t length = string();
                push(JsonEvent::Kind::kString, offset, length);
                return;
            }
            case 't':
                literal("true", JsonEvent::Kind::kTrue);
                return;
            case 'f':
                literal("false", JsonEvent::Kind::kFalse);
                return;
            case 'n':
                literal("null", JsonEvent::Kind::kNull);
                return;
            default:
                number();
        }
    }

    void key() {
        ws();
        const std::uint32_t offset = arena_offset();
        const std::uint32_t length = string();
        push(JsonEvent::Kind::kKey, offset, length);
        ws();
        expect(':');
    }

    void run() {
        ws();
        if (peek() != '{' && peek() != '[') fail("expected an object or an array");
        value();
        while (!open_.empty()) {
            ws();
            const char container = open_.back();
            if (expect_key_or_end_ || expect_value_or_end_) {
                const bool object = container == '{';
                expect_key_or_end_ = expect_value_or_end_ = false;
                if (peek() == (object ? '}' : ']')) {
                    close();
                    continue;
                }
                if (object) key();
                value();
                continue;
            }
            if (peek() == ',') {
                ++pos_;
                if (container == '{') key();
                value();
                continue;
            }
            if (peek() != (container == '{' ? '}' : ']'))
                fail("expected ',' or the end of a container");
            close();
        }
        ws();
        if (pos_ != s_.size()) fail("trailing characters");
    }

    void close() {
        ++pos_;
        const bool object = open_.back() == '{';
        open_.pop_back();
        push(object ? JsonEvent::Kind::kEndObject : JsonEvent::Kind::kEndArray);
    }

  private:
    std::string_view s_;
    const char* what_;
    std::vector<JsonEvent>& events_;
    std::string& arena_;
    std::vector<char>& open_;
    std::size_t pos_ = 0;
    bool expect_key_or_end_ = false;    // just after '{'
    bool expect_value_or_end_ = false;  // just after '['
};

}  // namespace

void JsonEvents::parse(std::string_view json, const char* what) {
    events_.clear();
    arena_.clear();
    open_.clear();
    if (json.size() >= std::numeric_limits<std::uint32_t>::max() / 2)
        throw Error(sqlstate::kBackupCorrupt, std::string("invalid ") + what, "value too large");
    EventParser(json, what, events_, arena_, open_).run();
}

}  // namespace batchguard
