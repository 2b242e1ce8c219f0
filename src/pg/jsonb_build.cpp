#include "pg/jsonb_build.hpp"

#include "pg/guard.hpp"

namespace batchguard::pg {

namespace {

// Everything here runs inside one pg_call: plain PostgreSQL calls, no C++ exceptions.
Datum build(const JsonEvents* json) {
    JsonbParseState* state = nullptr;
    JsonbValue* result = nullptr;
    for (const JsonEvent& e : json->events()) {
        JsonbValue v;
        switch (e.kind) {
            case JsonEvent::Kind::kBeginObject:
                result = pushJsonbValue(&state, WJB_BEGIN_OBJECT, nullptr);
                continue;
            case JsonEvent::Kind::kEndObject:
                result = pushJsonbValue(&state, WJB_END_OBJECT, nullptr);
                continue;
            case JsonEvent::Kind::kBeginArray:
                result = pushJsonbValue(&state, WJB_BEGIN_ARRAY, nullptr);
                continue;
            case JsonEvent::Kind::kEndArray:
                result = pushJsonbValue(&state, WJB_END_ARRAY, nullptr);
                continue;
            case JsonEvent::Kind::kKey:
            case JsonEvent::Kind::kString:
                // The limit jsonb_in applies (checkStringLen).
                if (e.length > JENTRY_OFFLENMASK)
                    ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                                    errmsg("string too long to represent as jsonb string")));
                v.type = jbvString;
                v.val.string.val = const_cast<char*>(json->text(e));
                v.val.string.len = static_cast<int>(e.length);
                if (e.kind == JsonEvent::Kind::kKey) {
                    result = pushJsonbValue(&state, WJB_KEY, &v);
                    continue;
                }
                break;
            case JsonEvent::Kind::kNumber:
                v.type = jbvNumeric;
                v.val.numeric = DatumGetNumeric(
                    DirectFunctionCall3(numeric_in, CStringGetDatum(json->text(e)),
                                        ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
                break;
            case JsonEvent::Kind::kTrue:
            case JsonEvent::Kind::kFalse:
                v.type = jbvBool;
                v.val.boolean = e.kind == JsonEvent::Kind::kTrue;
                break;
            case JsonEvent::Kind::kNull:
                v.type = jbvNull;
                break;
        }
        result = pushJsonbValue(&state, e.in_array ? WJB_ELEM : WJB_VALUE, &v);
    }
    return JsonbPGetDatum(JsonbValueToJsonb(result));
}

}  // namespace

Datum jsonb_from_events(const JsonEvents& json) {
    return pg_call([&] { return build(&json); });
}

}  // namespace batchguard::pg
