# pg_batchguard — PGXS build: make, make install, make installcheck.
EXTENSION    = pg_batchguard
# The version lives in the control file only.
EXTVERSION  := $(shell sed -n "s/^default_version *= *'\\([^']*\\)'.*/\\1/p" $(EXTENSION).control)
MODULE_big   = pg_batchguard

SRCS = $(sort $(wildcard src/core/*.cpp src/pg/*.cpp src/identity/*.cpp src/checkpoint/*.cpp \
                          src/worker/*.cpp src/backup/*.cpp)) \
       src/module.cpp
OBJS = $(SRCS:.cpp=.o)

# Released install and upgrade scripts are kept in the repository as shipped: never edit
# them (pg_batchguard--1.0.sql is version 1.0 as released).
# The version being developed is assembled from src/: its install script is the schema
# followed by each feature's SQL in this order, and its upgrade script from the previous
# release is the guard line followed by each feature's upgrade part (src/X/name--1.0--1.1.sql
# next to src/X/name.sql), in the same order. CONTRIBUTING.md walks through adding SQL.
PREVIOUS     = 1.0
INSTALL_SQL  = src/schema.sql src/identity/identity.sql src/checkpoint/checkpoint.sql \
               src/checkpoint/leases.sql src/worker/worker.sql src/backup/backup.sql \
               src/backup/delete.sql src/backup/protect.sql
UPGRADE_SQL := $(wildcard $(INSTALL_SQL:.sql=--$(PREVIOUS)--$(EXTVERSION).sql))
DATA         = $(EXTENSION)--1.0.sql
DATA_built   = $(EXTENSION)--$(EXTVERSION).sql $(EXTENSION)--$(PREVIOUS)--$(EXTVERSION).sql

# pg_regress runs test/schedule, whose groups of suites run in parallel (scripts/check-schedule
# keeps it in sync with sql/). PGXS passes REGRESS to pg_regress as its test list, so it
# carries the --schedule option itself. Isolation specs in specs/; TAP tests in test/t/.
REGRESS      = --schedule=test/schedule
REGRESS_OPTS = --load-extension=$(EXTENSION)
ISOLATION   := $(patsubst specs/%.spec,%,$(sort $(wildcard specs/*.spec)))
ISOLATION_OPTS = --load-extension=$(EXTENSION)
PROVE_TESTS := $(sort $(wildcard test/t/*.pl))
TAP_TESTS   := $(if $(PROVE_TESTS),1)

SHLIB_LINK   = -lzstd -lstdc++
PG_CONFIG   ?= pg_config
SERVER_INCLUDES := -isystem $(shell $(PG_CONFIG) --includedir-server)
PG_CPPFLAGS  = -Isrc $(SERVER_INCLUDES)
# -MMD: an object is rebuilt when a header it includes changes (PGXS tracks only sources).
PG_CXXFLAGS  = -std=c++20 -fPIC -MMD -MP -Wall -Wextra -Wno-missing-field-initializers \
               $(if $(WERROR),-Werror)

# Debian's PGXS would also compile every source to LLVM bitcode for JIT, without our
# C++ flags; the extension's functions are not JIT-inlinable anyway.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# src/core is pure C++: it is compiled without any of PostgreSQL's include directories (as
# under CMake), so including a PostgreSQL header there fails the build, and core/pure.hpp
# refuses postgres.h on top (docs/internals.md).
src/core/%.o: override CPPFLAGS := -Isrc -DBATCHGUARD_CORE \
	$(filter-out -I% $(SERVER_INCLUDES),$(CPPFLAGS))

$(EXTENSION)--$(EXTVERSION).sql: $(INSTALL_SQL)
	cat $^ > $@

$(EXTENSION)--$(PREVIOUS)--$(EXTVERSION).sql: $(UPGRADE_SQL) $(EXTENSION).control
	{ printf '%s\n' '-- pg_batchguard $(PREVIOUS) -> $(EXTVERSION) (assembled by the Makefile from src/**/*--$(PREVIOUS)--$(EXTVERSION).sql)' \
	         '\echo Use "ALTER EXTENSION pg_batchguard UPDATE TO '"'"'$(EXTVERSION)'"'"'" to load this file. \quit'; \
	  for part in $(UPGRADE_SQL); do printf '\n-- %s\n' "$$part"; cat "$$part"; done; } > $@

# PGXN: `make dist` writes the committed tree (HEAD) as $(EXTENSION)-<version>.zip with
# META.json at its root into DIST_DIR; the version is the control file's as a semantic
# version (1.1 -> 1.1.0), which META.json must match (scripts/check-meta).
DISTVERSION := $(shell echo '$(EXTVERSION)' | awk -F. '{ print $$1 "." ($$2 == "" ? 0 : $$2) "." ($$3 == "" ? 0 : $$3) }')
DIST_DIR    ?= .
dist:
	git archive --format zip --prefix=$(EXTENSION)-$(DISTVERSION)/ \
	    -o $(DIST_DIR)/$(EXTENSION)-$(DISTVERSION).zip HEAD
.PHONY: dist

EXTRA_CLEAN = $(DATA_built) $(OBJS:.o=.d) output_iso tmp_check

-include $(OBJS:.o=.d)
