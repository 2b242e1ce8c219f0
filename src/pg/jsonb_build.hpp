// jsonb values from JSON already parsed by the core (JsonEvents): the value jsonb_in
// would build from the same text, without lexing it a second time.
#pragma once
#include "pg/postgres.hpp"

#include "core/json_events.hpp"

namespace batchguard::pg {

// A jsonb datum (in the current memory context) for a UTF-8 document; the database
// encoding must be UTF-8 (other encodings go through jsonb_in after conversion).
Datum jsonb_from_events(const JsonEvents& json);

}  // namespace batchguard::pg
