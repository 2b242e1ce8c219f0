// The extension's GUCs (batchguard.*), defined once in _PG_init.
#pragma once

namespace batchguard::pg {

// Defines every batchguard.* setting; called by _PG_init before the prefix is reserved.
void define_settings();

// batchguard.notify_interval: the least time between two progress events of one job
// from one session, in milliseconds (0: one per committed transaction).
int notify_interval_ms();

}  // namespace batchguard::pg
