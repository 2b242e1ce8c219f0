// A JSON document as a flat list of events (begin/end of containers, keys, scalars), with
// strings decoded into one arena: what src/pg needs to build a jsonb value without
// parsing the text a second time. Iterative (any depth), validating, and reusable from
// row to row without new allocations once warm.
#pragma once
#include "core/pure.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace batchguard {

struct JsonEvent {
    enum class Kind : std::uint8_t {
        kBeginObject,
        kEndObject,
        kBeginArray,
        kEndArray,
        kKey,
        kString,
        kNumber,  // the literal, NUL-terminated in the arena
        kTrue,
        kFalse,
        kNull,
    };
    Kind kind;
    bool in_array = false;     // a scalar or container that is an array element
    std::uint32_t offset = 0;  // kKey, kString, kNumber: where its text starts in the arena
    std::uint32_t length = 0;
};

class JsonEvents {
  public:
    // Parses one JSON object or array. Throws Error(kBackupCorrupt) naming `what` on
    // malformed input, "\u0000", or a document larger than 4 GB.
    void parse(std::string_view json, const char* what);

    const std::vector<JsonEvent>& events() const { return events_; }
    const char* text(const JsonEvent& e) const { return arena_.data() + e.offset; }

  private:
    std::vector<JsonEvent> events_;
    std::string arena_;
    std::vector<char> open_;  // the containers open at the current position: '{' or '['
};

}  // namespace batchguard
