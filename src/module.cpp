// The library's entry: module magic and start-up.
#include "pg/postgres.hpp"

#include "pg/settings.hpp"

extern "C" {
PG_MODULE_MAGIC;

void _PG_init(void);
void _PG_init(void) {
    batchguard::pg::define_settings();
    MarkGUCPrefixReserved("batchguard");
}
}
