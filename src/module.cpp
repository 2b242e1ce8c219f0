// The library's entry: module magic and start-up.
#include "pg/postgres.hpp"

extern "C" {
PG_MODULE_MAGIC;

void _PG_init(void);
void _PG_init(void) {
    MarkGUCPrefixReserved("batchguard");
}
}
