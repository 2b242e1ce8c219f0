// Included by every header of src/core: the core builds and is unit tested without
// PostgreSQL. Core sources are compiled with BATCHGUARD_CORE (and, under CMake, without
// the server's include directory at all), so a PostgreSQL include there fails the build.
#pragma once

#if defined(BATCHGUARD_CORE) && defined(POSTGRES_H)
static_assert(false, "src/core must not include postgres.h: keep PostgreSQL calls in src/pg");
#endif
