// The backup file's model: a header line, one line per row, a trailer line (JSON lines,
// compressed with zstd). See docs/backup-format.md. Writing the lines and reading them
// back with every check (order, table names, row counts, SHA-256 of the body) lives here.
#pragma once
#include "core/hasher.hpp"
#include "core/json.hpp"
#include "core/json_lines.hpp"
#include "core/pure.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace batchguard {

inline constexpr std::string_view kBackupFormatName = "pg_batchguard backup";
// 2: values are the text of their type's output function (JSON strings, SQL NULL as
// null), tables record their owner, rows a delete changed name the changed columns.
// 1 (pg_batchguard 1.0): values as row_to_json rendered them. Both are read.
inline constexpr int kBackupFormatVersion = 2;
inline constexpr int kOldestBackupFormatVersion = 1;

struct BackupColumn {
    std::string name;
    std::string type;  // format_type() of the column
};

// A foreign key through which rows of a table were reached: the row's `columns` equal the
// parent's `parent_columns`; a row line's parent key is the text of those values.
struct BackupReference {
    std::string parent;
    std::vector<std::string> columns;
    std::vector<std::string> parent_columns;
};

struct BackupTable {
    std::string name;  // schema-qualified, quoted where needed
    std::vector<BackupColumn> columns;
    std::vector<std::string> key_columns;     // its primary key (may be empty)
    std::vector<BackupReference> references;  // empty for the source table
    std::string owner;                        // the table's owner when exported (format 2)
    // Whether the role that made the backup could write the table then (INSERT, or UPDATE
    // of some column; format 2): restore writes only into such tables.
    bool writable = true;
};

struct BackupHeader {
    int version = kBackupFormatVersion;
    std::string backup_id;
    std::string owner;
    std::optional<std::string> label;
    std::string source;
    bool include_children = true;
    std::string server_version;
    std::string encoding;
    std::string created_at;
    std::string expires_at;
    std::vector<std::pair<std::string, std::string>> settings;  // output settings pinned
    std::vector<BackupTable> tables;

    const BackupTable* find_table(std::string_view name) const;
};

struct BackupTrailer {
    std::vector<std::pair<std::string, std::int64_t>> row_counts;  // per table, header order
    std::int64_t total_rows = 0;
    std::string body_sha256;
};

// One line each, without the final '\n'.
std::string header_line(const BackupHeader& header);
std::string trailer_line(const BackupTrailer& trailer);

// One row line of a backup:
// {"table": ..., "row": {...}, "parent": null | {"table": ..., "key": ...}}.
struct RowLine {
    std::string table;
    std::string_view row;  // the row object's JSON text, a view into the line
    std::optional<std::string> parent_table;
    std::optional<std::string> parent_key;
    // Format 2: the columns a delete changed (SET NULL / SET DEFAULT); absent for a row
    // it removed.
    std::optional<std::vector<std::string>> changed;
};

// Splits a row line into its parts; the row object is matched, not parsed (jsonb_in or
// JsonEvents check it). Throws Error(kBackupCorrupt) on anything else.
RowLine parse_row_line(std::string_view line);

// Format 2: the values of some columns of a table's rows, read straight out of each row
// object's JSON text (restore reads every row this way; no tree is built, and buffers are
// reused from row to row). The whole object is checked as parse_json checks it (syntax,
// duplicate keys, depth) and throws Error(kBackupCorrupt) "invalid backup row" as it does;
// a wanted value that is neither a string nor null is refused too.
class RowValueReader {
  public:
    explicit RowValueReader(std::vector<std::string> columns);
    void read(std::string_view row);
    // The i-th column's text in the row read last; nullptr when NULL or absent.
    const std::string* value(std::size_t i) const { return present_[i] ? &values_[i] : nullptr; }

  private:
    std::vector<std::string> columns_;
    std::vector<std::string> values_;
    std::vector<bool> present_;
    std::vector<std::string> keys_;
};

// Appends a row line: {"table":T,"row":ROW,"parent":null|{"table":P,"key":K}}.
// `row_json` must be one JSON object (it is copied as is).
void append_row_line(std::string& out, std::string_view table, std::string_view row_json,
                     const std::string* parent_table, std::string_view parent_key);

// The same, with the parts that repeat on every row of one table prepared once.
class RowLineFormat {
  public:
    RowLineFormat(std::string_view table, const std::string* parent_table);
    // changed_json: the JSON array of the columns a delete changed, or null for a row it
    // removed (format 2).
    void append(std::string& out, std::string_view row_json, const std::string_view* parent_key,
                const std::string* changed_json = nullptr) const;
    // The same line in parts, for a writer that renders the row's JSON in place between
    // them: begin, the row's JSON object, then end_without_parent or end_with_parent (whose
    // parent_key_json is the key already as JSON, e.g. append_json_string of its text).
    void begin(std::string& out) const { out += prefix_; }
    void end_without_parent(std::string& out, const std::string* changed_json) const;
    bool has_parent() const { return !parent_prefix_.empty(); }
    void end_with_parent_key_start(std::string& out) const { out += parent_prefix_; }
    void end_after_parent_key(std::string& out, const std::string* changed_json) const;

  private:
    std::string prefix_;         // {"table":T,"row":
    std::string parent_prefix_;  // ,"parent":{"table":P,"key":
};

BackupHeader parse_header_line(std::string_view line);
BackupTrailer parse_trailer_line(std::string_view line);
bool is_trailer_line(std::string_view line);

// The largest header line a reader accepts: a real header lists the tables of one
// foreign-key graph (capped by the export), far below this.
inline constexpr std::size_t kMaxHeaderLine = std::size_t{16} << 20;

// Reads a decompressed backup stream line by line: the header first, then rows, and
// checks the trailer (row counts, SHA-256 of the body) when it is reached. Anything
// out of order, unknown, truncated or not matching is an Error(kBackupCorrupt).
class BackupStreamReader {
  public:
    BackupStreamReader(ByteSource& decompressed, std::unique_ptr<Hasher> body_hasher);

    const BackupHeader& header();
    // The next row, or nullopt after a verified trailer. The views stay valid until the
    // next call.
    std::optional<RowLine> next_row();
    const std::optional<BackupTrailer>& trailer() const { return trailer_; }

  private:
    void read_header();
    void finish(std::string_view line);

    LineSplitter lines_;
    std::unique_ptr<Hasher> hasher_;
    std::optional<BackupHeader> header_;
    std::optional<BackupTrailer> trailer_;
    std::unordered_map<std::string_view, std::size_t> table_index_;  // names in header_
    std::vector<std::int64_t> counts_;
    std::int64_t rows_ = 0;
};

}  // namespace batchguard
