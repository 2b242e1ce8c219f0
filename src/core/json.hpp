// The little JSON the core needs: string escaping for the lines it writes, a small
// validating parser for backup headers and trailers (bounded depth), and a matcher that
// finds the end of a container without building a tree (the backup row line in
// backup_format.hpp uses both).
#pragma once
#include "core/pure.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace batchguard {

// Appends `text` (UTF-8) as a JSON string literal, quotes included.
void append_json_string(std::string& out, std::string_view text);

class JsonValue {
  public:
    enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };

    Kind kind = Kind::kNull;
    bool boolean = false;
    std::string text;  // kString: the decoded string; kNumber: the literal as written
    std::vector<JsonValue> items;
    // kObject: keys (unique) and their values, in order.
    std::vector<std::string> keys;
    std::vector<JsonValue> values;

    const JsonValue* find(std::string_view key) const;
    bool is_object() const { return kind == Kind::kObject; }
    bool is_string() const { return kind == Kind::kString; }
};

// Parses one JSON document (surrounding whitespace allowed). Throws Error(kBackupCorrupt)
// naming `what` and the byte offset on malformed input, duplicate keys or depth > 64.
JsonValue parse_json(std::string_view text, const char* what);

// Finds the end of the object or array that starts at `pos` without recursion (any depth):
// strings and brackets are matched, the rest is left for a full parser (jsonb_in) to check.
// Throws Error(kBackupCorrupt) when the value is unbalanced or unterminated.
std::size_t find_json_container_end(std::string_view text, std::size_t pos, const char* what);

// Decodes a JSON \uXXXX escape (a surrogate pair takes two) whose hex digits start at
// text[pos], advances pos past it and appends its UTF-8 to *out when out is not null.
// Returns nullptr, or what is wrong with the escape (the parsers report it their way).
const char* decode_unicode_escape(std::string_view text, std::size_t& pos, std::string* out);

}  // namespace batchguard
