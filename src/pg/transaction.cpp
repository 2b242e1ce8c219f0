#include "pg/transaction.hpp"

#include "pg/postgres.hpp"

#include "core/error.hpp"

#include <string>

namespace batchguard::pg {

void require_read_committed(const char* function, const char* hint) {
    if (!IsolationUsesXactSnapshot()) return;
    throw Error(sqlstate::kFeatureNotSupported,
                std::string(function) + " requires the READ COMMITTED isolation level",
                std::string("The transaction is ") +
                    (IsolationIsSerializable() ? "SERIALIZABLE" : "REPEATABLE READ") + ".",
                hint);
}

}  // namespace batchguard::pg
