// Which rows a backup holds, row by row: the source rows selected by ids (or all of them)
// and, through foreign keys, every row a plain DELETE of them removes (CASCADE, through
// any depth and any cycle) or changes (SET NULL / SET DEFAULT) -- or, for export_backup,
// every row that references an exported row, recursively. Each table's rows are a key
// set (table oid, ctid and the key values its children reference) grown to a fixpoint,
// one statement per foreign key and round, so the SQL grows linearly with the graph.
// Shared by export_backup, delete_preview, delete_with_backup and purge_with_backup.
#pragma once
#include "pg/postgres.hpp"
#include "pg/spi.hpp"

#include "core/backup_format.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace batchguard::backup {

// kExport follows every reference; kDelete follows what a DELETE does and locks each row
// it finds (FOR UPDATE); kPreview is kDelete without locks, counting the references that
// would make the delete fail.
enum class PlanMode { kExport, kDelete, kPreview };

struct PlanEdge {
    int child = -1, parent = -1;  // table indexes
    std::string constraint;
    std::vector<std::string> columns, parent_columns;          // quoted
    std::vector<std::string> raw_columns, raw_parent_columns;  // unquoted, for the header
    std::vector<std::string> operators;                        // parent = child, qualified
    std::vector<int> parent_set;        // per column: index into the parent's key set
    std::vector<std::string> changed;   // SET NULL / SET DEFAULT: the columns it changes
    char action = 'a';                  // pg_constraint.confdeltype: a r c n d
    std::vector<Oid> parent_relations;  // the referenced relation and its partitions
};

// Rows of one table, identified by (table oid, ctid): stable while they are locked, or
// within one snapshot.
struct RowSet {
    struct Row {
        Oid relation;
        ItemPointerData tid;
        int via;        // the edge it was found through; -1: selected directly
        int next = -1;  // the next row with the same ctid (in another relation)
    };
    std::vector<Row> rows;
    std::vector<std::vector<Datum>> keys;  // [key set column][row]
    std::vector<std::vector<bool>> key_nulls;
    std::unordered_map<std::uint64_t, int> by_tid;  // tid -> first row (any relation)

    int find(Oid relation, const ItemPointerData& tid) const;
    // Appends a row (not there yet); returns its index.
    int add(const Row& row);
    std::size_t size() const { return rows.size(); }
};

struct PlanTable {
    Oid relid = InvalidOid;
    std::string name;  // schema-qualified, quoted where needed
    std::string owner;
    Oid owner_oid = InvalidOid;
    bool partitioned = false;
    bool updatable = true;  // the caller may lock its rows (UPDATE on some column)
    bool writable = false;  // the caller may insert or update rows (recorded in the backup)
    // Exporting: a table reached through one foreign key and referenced by nothing in the
    // backup. Its rows are not collected; the export streams them (RowPlan::edge_query).
    bool streamed = false;
    std::vector<BackupColumn> columns;
    std::vector<std::string> key_columns, key_types;
    std::vector<Oid> leaves;                // the relations that hold its rows
    std::map<Oid, std::string> leaf_names;  // quoted, schema-qualified
    std::vector<std::string> set_columns;   // quoted: the key set's columns
    std::vector<Oid> set_types;
    std::vector<int> in_edges;                 // edges whose child is this table
    RowSet deleted;                            // removed (kDelete) or exported rows
    RowSet changed;                            // old values of SET NULL / SET DEFAULT rows
    std::vector<std::vector<int>> changed_by;  // per changed row: the edges
    std::int64_t blocking = 0;                 // kPreview: rows that make the delete fail
    // Per relation: removed rows a SET NULL / SET DEFAULT reference also reaches (each such
    // edge may update the row before the cascade removes it).
    std::map<Oid, std::int64_t> removed_and_reached;
};

class RowPlan {
  public:
    struct Limits {
        int max_tables = 256;
        int max_edges = 1024;
        int max_depth = 64;
    };

    // Reads the catalogs and computes the rows. ids: text[] of the source's primary keys
    // (nullopt: every row the caller can read). include_children false: the source only.
    static RowPlan build(pg::SpiSession& spi, Oid source, std::optional<Datum> ids,
                         bool include_children, PlanMode mode);

    const std::vector<PlanTable>& tables() const { return tables_; }
    const std::vector<PlanEdge>& edges() const { return edges_; }
    PlanMode mode() const { return mode_; }

    // The header's table list (references: the edges rows were found through).
    std::vector<BackupTable> header_tables() const;

    // Per relation (leaf): rows the DELETE must remove, and the range of updates it
    // makes (a row both changed and removed may be updated first or not at all).
    struct Expected {
        std::int64_t deleted = 0, updated_min = 0, updated_max = 0;
    };
    std::map<Oid, Expected> expected() const;
    // The relation of each leaf, for messages.
    std::string table_of(Oid leaf) const;

    // Exporting a table that nothing references: its rows are not collected; the export
    // streams them with source_condition() ($1: the ids, when given).
    bool streamed() const { return streamed_; }
    const std::string& source_condition() const { return source_condition_; }

    // The rows of an edge's child that reference any row of its parent: a FROM clause
    // (alias bg_row) and its parameters (arrays of the parent's keys). nullopt: none.
    struct EdgeQuery {
        std::string from;
        std::vector<Oid> types;
        std::vector<Datum> values;
    };
    std::optional<EdgeQuery> edge_query(int edge) const;

    // tid[] of the given rows of one relation (built in the current memory context).
    static Datum tid_array(const RowSet& set, Oid relation, int via, bool any_via);

  private:
    void discover(pg::SpiSession& spi, Oid source, bool include_children);
    void check_rules(pg::SpiSession& spi);
    void select_source(pg::SpiSession& spi, std::optional<Datum> ids);
    void grow();
    void changed_rows();
    std::optional<EdgeQuery> edge_query(const PlanEdge& edge, const RowSet& parent_rows,
                                        const std::vector<int>& parent_rows_used) const;
    std::vector<int> fetch(const PlanEdge& edge, const RowSet& parent_rows,
                           const std::vector<int>& parent_rows_used, RowSet& into, int via,
                           bool lock);

    std::vector<PlanTable> tables_;
    std::vector<PlanEdge> edges_;
    // The source's rows the DELETE itself removes (the first of tables_[0].deleted): they
    // are gone before any foreign-key action runs, so none of those updates them.
    std::size_t direct_rows_ = 0;
    PlanMode mode_ = PlanMode::kExport;
    MemoryContext memory_ = nullptr;
    bool streamed_ = false;
    std::string source_condition_ = "true";
};

}  // namespace batchguard::backup
