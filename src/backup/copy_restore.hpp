// restore_backup's bulk path: the removed rows of a format-2 backup fed to PostgreSQL's own
// COPY FROM (table_multi_insert in batches, index inserts, constraints, foreign-key checks),
// one COPY per run of one table's rows in the file, the file read once. restore.cpp takes
// it only where it keeps every guarantee of the INSERT path (copy_path_allowed and the
// conditions there) and otherwise falls back to that path; docs/api.md lists the cases.
#pragma once
#include "pg/postgres.hpp"
#include "pg/spi.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace batchguard::backup {

// Why a table keeps the INSERT path, or empty when COPY may load it: anything that would
// run during the COPY other than the columns' input functions (which run under the
// backup's pinned settings, as the INSERT path parses the values) -- user INSERT triggers,
// rules, CHECK constraints, domain or composite columns, a foreign key compared across
// types, partitioning -- and row security for the caller (COPY ignores no policy: it
// refuses them, so such a table is restored by INSERT, under its policies).
std::string copy_path_refused(pg::SpiSession& spi, Oid relid);

struct CopyTarget {
    Oid relid = InvalidOid;
    std::string backup_name;           // the table's name in the backup's row lines
    std::vector<std::string> columns;  // the restored columns (not quoted), none generated
};

struct CopyCounts {
    std::int64_t rows = 0;      // the table's rows in the backup
    std::int64_t inserted = 0;  // the rows COPY inserted
};

// Thrown when the bulk path gives up part way (the file's rows of one table are split in
// too many runs): the caller rolls its subtransaction back and takes the INSERT path.
struct CopyGaveUp {};

// Loads every removed row of the backup (rows a delete changed are counted, not loaded)
// with the caller's privileges; the caller has checked copy_path_refused for each target
// and runs this in a subtransaction. Raises PostgreSQL's errors (PgError) as COPY does.
std::vector<CopyCounts> copy_backup_rows(Datum backup_id, const std::vector<CopyTarget>& targets);

}  // namespace batchguard::backup
