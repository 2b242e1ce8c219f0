// libFuzzer target: the JSON parser, the row line scanner, and escaping round trips.
#include "core/error.hpp"
#include "core/json.hpp"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    try {
        batchguard::parse_json(input, "fuzz");
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
    // Escaping then parsing gives the text back (inputs without NUL: JSON text cannot hold one).
    if (input.find('\0') == std::string_view::npos) {
        std::string literal;
        batchguard::append_json_string(literal, input);
        const batchguard::JsonValue v = batchguard::parse_json(literal, "escaped");
        if (v.text != input) __builtin_trap();
    }
    return 0;
}
