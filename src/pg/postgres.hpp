// The one way C++ code includes PostgreSQL: postgres.h first, C linkage, then the
// macro clashes with the C++ standard library undone in one place.
#pragma once

extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

// port.h redefines these as macros; they break <cstdio>/<filesystem> users.
#undef snprintf
#undef vsnprintf
#undef sprintf
#undef vsprintf
#undef fprintf
#undef printf
#undef unlink
#undef rename
#undef gettext
#undef dgettext
#undef ngettext
#undef dngettext
