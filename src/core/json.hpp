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

// A parsed JSON document as one flat array of nodes (each container followed by its
// members, an object's as key node + value) with every string and number in one arena:
// what the backup header and trailer readers walk. parse_json builds a tree of vectors and
// strings, tens of allocations per header; a JsonTape reused from line to line allocates
// nothing once warm (a fuzzer reads thousands of headers per second, the server one per
// file). Same rules and errors as parse_json.
class JsonTape;

// A node of a JsonTape (valid until the tape parses again).
class JsonRef {
  public:
    JsonValue::Kind kind() const;
    bool boolean() const;
    // kString: the decoded string; kNumber: the literal as written; keys of members().
    std::string_view text() const;
    // kObject: the value of `key`, if present (nullopt for any other kind).
    std::optional<JsonRef> find(std::string_view key) const;
    // kArray: the number of items; kObject: of members.
    std::size_t size() const;
    bool is_object() const { return kind() == JsonValue::Kind::kObject; }
    bool is_string() const { return kind() == JsonValue::Kind::kString; }

    // Iterates over an array's items, or an object's members as (key node, value node).
    class Iterator {
      public:
        Iterator(const JsonTape* tape, std::uint32_t index, bool members)
            : tape_(tape), index_(index), members_(members) {}
        JsonRef operator*() const { return JsonRef(tape_, index_); }
        Iterator& operator++();
        bool operator!=(const Iterator& other) const { return index_ != other.index_; }

      private:
        const JsonTape* tape_;
        std::uint32_t index_;
        bool members_;  // steps over a key node and its value
    };
    struct Range {
        Iterator first, last;
        Iterator begin() const { return first; }
        Iterator end() const { return last; }
    };
    Range items() const;    // kArray (empty for any other kind)
    Range members() const;  // kObject: the key nodes, value() of each is its value (or empty)
    JsonRef value() const;  // of a key node from members()

  private:
    friend class JsonTape;
    JsonRef(const JsonTape* tape, std::uint32_t index) : tape_(tape), index_(index) {}
    const JsonTape* tape_;
    std::uint32_t index_;
};

class JsonTape {
  public:
    // Parses one JSON document (surrounding whitespace allowed), replacing the previous
    // one. Throws what parse_json throws for the same text.
    void parse(std::string_view text, const char* what);
    JsonRef root() const { return JsonRef(this, 0); }
    // Gives back memory a very large document needed.
    void trim();

  private:
    friend class JsonRef;
    friend class JsonTapeBuilder;
    struct Node {
        JsonValue::Kind kind = JsonValue::Kind::kNull;
        bool boolean = false;
        std::uint32_t offset = 0;  // kString, kNumber, keys: the text in arena_
        std::uint32_t length = 0;
        std::uint32_t end = 0;    // one past the node's last descendant
        std::uint32_t count = 0;  // kArray: items; kObject: members
    };
    std::vector<Node> nodes_;
    std::string arena_;
};

// Finds the end of the object or array that starts at `pos` without recursion (any depth):
// strings and brackets are matched, the rest is left for a full parser (jsonb_in) to check.
// Throws Error(kBackupCorrupt) when the value is unbalanced or unterminated.
std::size_t find_json_container_end(std::string_view text, std::size_t pos, const char* what);

// Decodes a JSON \uXXXX escape (a surrogate pair takes two) whose hex digits start at
// text[pos], advances pos past it and appends its UTF-8 to *out when out is not null.
// Returns nullptr, or what is wrong with the escape (the parsers report it their way).
const char* decode_unicode_escape(std::string_view text, std::size_t& pos, std::string* out);

}  // namespace batchguard
