#include "core/error.hpp"
#include "core/json.hpp"
#include "core/json_events.hpp"

#include <gtest/gtest.h>

using namespace batchguard;

namespace {

// The events written back as compact JSON: a round trip shows what was understood.
std::string render(const JsonEvents& j) {
    std::string out;
    bool first = true;
    for (const JsonEvent& e : j.events()) {
        const bool closing =
            e.kind == JsonEvent::Kind::kEndObject || e.kind == JsonEvent::Kind::kEndArray;
        if (!first && !closing && out.back() != ':') out += ",";
        first = false;
        switch (e.kind) {
            case JsonEvent::Kind::kBeginObject:
                out += "{";
                first = true;
                break;
            case JsonEvent::Kind::kEndObject:
                out += "}";
                break;
            case JsonEvent::Kind::kBeginArray:
                out += "[";
                first = true;
                break;
            case JsonEvent::Kind::kEndArray:
                out += "]";
                break;
            case JsonEvent::Kind::kKey:
                append_json_string(out, std::string_view(j.text(e), e.length));
                out += ":";
                break;
            case JsonEvent::Kind::kString:
                append_json_string(out, std::string_view(j.text(e), e.length));
                break;
            case JsonEvent::Kind::kNumber:
                out += std::string_view(j.text(e), e.length);
                break;
            case JsonEvent::Kind::kTrue:
                out += "true";
                break;
            case JsonEvent::Kind::kFalse:
                out += "false";
                break;
            case JsonEvent::Kind::kNull:
                out += "null";
                break;
        }
    }
    return out;
}

std::string events_of(std::string_view json) {
    JsonEvents j;
    try {
        j.parse(json, "row");
    } catch (const Error& e) {
        return std::string(e.sqlstate()) + ": " + e.what();
    }
    return render(j);
}

}  // namespace

TEST(JsonEvents, RoundTripsDocuments) {
    for (const char* doc : {R"({})", R"([])", R"({"a":1})", R"([1,-2.5e+3,true,false,null,"x"])",
                            R"({"a":{"b":[{},[],{"c":[1,[2,[3]]]}]},"d":"e"})",
                            R"({"dup":1,"dup":2})", R"([[[[[[[[[[]]]]]]]]]])"})
        EXPECT_EQ(events_of(doc), doc);
    EXPECT_EQ(events_of(" { \"a\" : [ 1 , 2 ] } \n"), R"({"a":[1,2]})");
}

TEST(JsonEvents, DecodesStrings) {
    JsonEvents j;
    j.parse(R"({"k\n":"a\u00e9\ud83d\ude00\"\\\/\b\f\r\t"})", "row");
    ASSERT_EQ(j.events().size(), 4u);
    const JsonEvent& key = j.events()[1];
    EXPECT_EQ(std::string(j.text(key), key.length), "k\n");
    const JsonEvent& value = j.events()[2];
    EXPECT_EQ(std::string(j.text(value), value.length), "a\u00e9\U0001F600\"\\/\b\f\r\t");
    EXPECT_FALSE(value.in_array);
}

TEST(JsonEvents, NumbersAreNulTerminatedLiterals) {
    JsonEvents j;
    j.parse("[1.500,-0,1E-7]", "row");
    ASSERT_EQ(j.events().size(), 5u);
    EXPECT_STREQ(j.text(j.events()[1]), "1.500");
    EXPECT_STREQ(j.text(j.events()[2]), "-0");
    EXPECT_STREQ(j.text(j.events()[3]), "1E-7");
    EXPECT_TRUE(j.events()[1].in_array);
}

TEST(JsonEvents, AnyDepthWithoutRecursion) {
    std::string deep(200000, '[');
    deep += std::string(200000, ']');
    JsonEvents j;
    j.parse(deep, "row");
    EXPECT_EQ(j.events().size(), 400000u);
}

TEST(JsonEvents, RejectsMalformedDocuments) {
    for (const char* bad :
         {"",          "1",        "\"s\"",      "{",          "[1,]",          "[1 2]",
          "{\"a\"}",   "{\"a\":}", "{1:2}",      "{\"a\":1,}", "[01]",          "[1.]",
          "[-]",       "[tru]",    "[\"\x01\"]", "{} x",       "[\"\\u0000\"]", "[\"\\ud800\"]",
          "[\"\\x\"]", "]",        "[}",         "{]"})
        EXPECT_EQ(events_of(bad), "PB103: invalid row") << bad;
}
