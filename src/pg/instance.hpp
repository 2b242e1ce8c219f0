// This copy of the cluster. The system identifier does not tell copies apart (a
// pg_basebackup or PITR copy shares it), so each copy keeps a random instance id in
// $PGDATA/pg_batchguard.instance together with the data directory (device, inode) and
// system it was made for; a copy of that file found in another data directory or system
// is replaced by a new id at its first use there. Backup folders record the instance that
// owns them (see backup/folders.hpp).
#pragma once
#include "pg/postgres.hpp"

#include <cstdint>
#include <string>

namespace batchguard::pg {

// The instance id of this server (16 hex digits); raises an error when the file cannot be
// read or written.
const std::string& server_instance();

// The same for plain C callers (the launcher): writes the id (and its NUL) into `id`;
// on failure reports at `elevel` (LOG in the launcher) and returns false.
bool server_instance_id(char id[17], int elevel) noexcept;

// This cluster's system identifier (pg_control).
std::uint64_t system_identifier() noexcept;

}  // namespace batchguard::pg
