// libFuzzer target: the JSON parser, the row line scanner, and escaping round trips.
#include "core/backup_format.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "core/json_events.hpp"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    // The tree parser runs once (it ran twice per execution before; the checks below use
    // its one result).
    bool tree_ok = false;
    try {
        const batchguard::JsonValue v = batchguard::parse_json(input, "fuzz");
        tree_ok = v.kind == batchguard::JsonValue::Kind::kObject ||
                  v.kind == batchguard::JsonValue::Kind::kArray;
    } catch (const batchguard::Error&) {
    }
    try {
        batchguard::parse_row_line(input);
    } catch (const batchguard::Error&) {
    }
    try {
        if (!input.empty()) batchguard::find_json_container_end(input, 0, "fuzz");
    } catch (const batchguard::Error&) {
    }
    // The event parser agrees with the validating parser on objects and arrays.
    {
        static batchguard::JsonEvents events;
        bool events_ok = true;
        try {
            events.parse(input, "fuzz");
        } catch (const batchguard::Error&) {
            events_ok = false;
        }
        // The tree parser also rejects duplicate keys and nesting beyond 64 levels.
        if (tree_ok && !events_ok) __builtin_trap();
    }
    // Escaping then parsing gives the text back (inputs without NUL: JSON text cannot hold one).
    if (input.find('\0') == std::string_view::npos) {
        std::string literal;
        batchguard::append_json_string(literal, input);
        const batchguard::JsonValue v = batchguard::parse_json(literal, "escaped");
        if (v.text != input) __builtin_trap();
    }
    return 0;
}
