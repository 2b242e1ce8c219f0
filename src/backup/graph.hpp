// Which rows a backup holds: the source table's selected rows and, through foreign keys
// (recursively, cycles cut), every row that references them. Built from the catalogs;
// produces the SQL that streams each table's rows as JSON with its parent reference.
// Reused by delete_with_backup and restore_backup.
#pragma once
#include "pg/postgres.hpp"
#include "pg/spi.hpp"

#include "core/backup_format.hpp"

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace batchguard::backup {

struct GraphEdge {
    int parent = -1;                          // index of the referenced table
    std::string constraint;                   // the foreign key's name
    std::vector<std::string> columns;         // quoted column names on the referencing side
    std::vector<std::string> parent_columns;  // quoted column names on the referenced side
    std::vector<std::string> raw_columns, raw_parent_columns;  // unquoted, for the header
    std::vector<std::string> operators;                        // OPERATOR(schema.=) per column pair
    char on_delete = 'a';  // pg_constraint.confdeltype: a r c n d
};

// How the graph follows foreign keys. kExport: every reference, recursively. kDelete: what
// a plain DELETE of the source rows removes (CASCADE, followed recursively) or changes
// (SET NULL / SET DEFAULT, not followed further). kPreview: kDelete plus the tables whose
// RESTRICT / NO ACTION references would make the delete fail.
enum class GraphMode { kExport, kDelete, kPreview };

struct GraphTable {
    Oid relid = InvalidOid;
    std::string name;  // schema-qualified, quoted where needed
    std::vector<BackupColumn> columns;
    std::vector<std::string> key_columns;  // primary key, unquoted
    std::vector<std::string> key_types;    // format_type of each key column
    std::vector<GraphEdge> edges;          // foreign keys to tables earlier in the order
    std::vector<GraphEdge> self_edges;     // foreign keys to itself (trees)
    // kDelete / kPreview: "delete", "set null", "set default" or "restrict".
    std::string action = "delete";
    std::vector<std::string> changed_columns;  // SET NULL / SET DEFAULT: the columns, unquoted
};

// One query of the export: the rows of `table` reached through `edge` (-1: the source
// rows that were selected directly; >= edges.size(): a self edge). Returns the row as JSON
// text and, for a reference, the parent key as text.
struct RowQuery {
    int table = 0;
    int edge = -1;
    bool self_edge = false;
    std::string sql;
};

class BackupGraph {
  public:
    // Reads the catalogs. `ids` given: the source needs a single-column primary key.
    static BackupGraph build(pg::SpiSession& spi, Oid source, bool have_ids, bool include_children,
                             GraphMode mode = GraphMode::kExport);
    // DELETE of the selected source rows ($1: the ids).
    std::string delete_sql() const;

    const std::vector<GraphTable>& tables() const { return tables_; }
    // The queries, in file order: parents always before the rows that reference them.
    // rows_only: the same rows without their JSON (for row locks).
    std::vector<RowQuery> queries(bool rows_only = false) const;
    // The header's table list.
    std::vector<BackupTable> header_tables() const;
    // Whether the source rows are selected by ids ($1, a text[] of primary keys).
    bool have_ids() const { return have_ids_; }

  private:
    std::string base_condition(int table, const std::string& alias, int& depth) const;
    std::string condition(int table, const std::string& alias, int& depth) const;
    std::string edge_exists(int table, const GraphEdge& edge, const std::string& alias,
                            int& depth) const;
    std::string self_exists(int table, const GraphEdge& edge, const std::string& alias,
                            int& depth) const;
    std::string key_text(const GraphEdge& edge, const std::string& alias) const;
    std::string from(int table) const;

    std::vector<GraphTable> tables_;
    bool have_ids_ = false;
    std::string ids_condition_;  // "%s.pk OPERATOR(...) ANY ($1::text[]::type[])", %s: alias
    std::set<int> partitioned_;
};

}  // namespace batchguard::backup
