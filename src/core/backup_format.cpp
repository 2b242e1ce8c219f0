#include "core/backup_format.hpp"

#include "core/error.hpp"
#include "core/interrupts.hpp"
#include "core/utf8.hpp"
#include "core/json_parser.hpp"

#include <algorithm>
#include <charconv>
#include <unordered_set>

namespace batchguard {

std::string to_hex(const unsigned char* data, std::size_t size) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(size * 2);
    for (std::size_t i = 0; i < size; ++i) {
        out.push_back(kHex[data[i] >> 4]);
        out.push_back(kHex[data[i] & 0xF]);
    }
    return out;
}

const BackupTable* BackupHeader::find_table(std::string_view name) const {
    for (const BackupTable& t : tables)
        if (t.name == name) return &t;
    return nullptr;
}

namespace {

// Every line of a backup is UTF-8 text (docs/backup-format.md).
void require_utf8(std::string_view line, std::int64_t line_number) {
    const std::size_t bad_byte = find_invalid_utf8(line);
    if (bad_byte == std::string_view::npos) return;
    throw Error(
        sqlstate::kBackupCorrupt, "backup data is not valid UTF-8",
        "Line " + std::to_string(line_number) + ", byte " + std::to_string(bad_byte + 1) + ".");
}

void key(std::string& out, std::string_view name) {
    append_json_string(out, name);
    out.push_back(':');
}

void string_array(std::string& out, const std::vector<std::string>& items) {
    out += "[";
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += ",";
        append_json_string(out, items[i]);
    }
    out += "]";
}

[[noreturn]] void bad(const char* what, const std::string& why) {
    throw Error(sqlstate::kBackupCorrupt, std::string("invalid ") + what, why);
}

JsonRef member(JsonRef object, std::string_view name, JsonValue::Kind kind, const char* what) {
    const std::optional<JsonRef> v = object.find(name);
    if (!v) bad(what, "\"" + std::string(name) + "\" is missing");
    if (v->kind() != kind) bad(what, "\"" + std::string(name) + "\" has the wrong type");
    return *v;
}

std::string string_member(JsonRef object, std::string_view name, const char* what) {
    return std::string(member(object, name, JsonValue::Kind::kString, what).text());
}

std::int64_t to_int64(JsonRef v, const char* what, std::string_view name) {
    std::int64_t n = 0;
    const std::string_view t = v.text();
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
    if (ec != std::errc() || end != t.data() + t.size() || n < 0)
        bad(what, "\"" + std::string(name) + "\" must be a non-negative integer");
    return n;
}

constexpr const char* kHeader = "backup header";

std::vector<std::string> strings(JsonRef array) {
    std::vector<std::string> out;
    out.reserve(array.size());
    for (JsonRef item : array.items()) {
        if (!item.is_string()) bad(kHeader, "a column name is not a string");
        out.emplace_back(item.text());
    }
    return out;
}

// The header and trailer are parsed into one tape per thread, reused: no allocation per
// line once warm.
JsonTape& line_tape() {
    static thread_local JsonTape tape;
    return tape;
}

// Parses `line` into the thread's tape and gives back a very large line's memory when
// done.
class ParsedLine {
  public:
    ParsedLine(std::string_view line, const char* what) : tape_(line_tape()) {
        tape_.parse(line, what);
    }
    ~ParsedLine() { tape_.trim(); }
    ParsedLine(const ParsedLine&) = delete;
    ParsedLine& operator=(const ParsedLine&) = delete;
    JsonRef root() const { return tape_.root(); }

  private:
    JsonTape& tape_;
};
constexpr const char* kTrailer = "backup trailer";

}  // namespace

std::string header_line(const BackupHeader& h) {
    std::string out = "{";
    key(out, "format");
    append_json_string(out, kBackupFormatName);
    out += ",";
    key(out, "version");
    out += std::to_string(h.version);
    auto field = [&](std::string_view name, std::string_view value) {
        out += ",";
        key(out, name);
        append_json_string(out, value);
    };
    field("backup_id", h.backup_id);
    field("owner", h.owner);
    out += ",";
    key(out, "label");
    if (h.label)
        append_json_string(out, *h.label);
    else
        out += "null";
    field("source", h.source);
    out += ",";
    key(out, "include_children");
    out += h.include_children ? "true" : "false";
    field("server_version", h.server_version);
    field("encoding", h.encoding);
    field("created_at", h.created_at);
    field("expires_at", h.expires_at);
    out += ",";
    key(out, "settings");
    out += "{";
    for (std::size_t i = 0; i < h.settings.size(); ++i) {
        if (i > 0) out += ",";
        key(out, h.settings[i].first);
        append_json_string(out, h.settings[i].second);
    }
    out += "},";
    key(out, "tables");
    out += "[";
    for (std::size_t i = 0; i < h.tables.size(); ++i) {
        const BackupTable& t = h.tables[i];
        if (i > 0) out += ",";
        out += "{";
        key(out, "name");
        append_json_string(out, t.name);
        out += ",";
        key(out, "columns");
        out += "[";
        for (std::size_t c = 0; c < t.columns.size(); ++c) {
            if (c > 0) out += ",";
            out += "{";
            key(out, "name");
            append_json_string(out, t.columns[c].name);
            out += ",";
            key(out, "type");
            append_json_string(out, t.columns[c].type);
            out += "}";
        }
        out += "],";
        key(out, "key");
        string_array(out, t.key_columns);
        out += ",";
        if (h.version >= 2) {
            key(out, "owner");
            append_json_string(out, t.owner);
            out += ",";
            key(out, "writable");
            out += t.writable ? "true" : "false";
            out += ",";
        }
        key(out, "references");
        out += "[";
        for (std::size_t r = 0; r < t.references.size(); ++r) {
            const BackupReference& ref = t.references[r];
            if (r > 0) out += ",";
            out += "{";
            key(out, "parent");
            append_json_string(out, ref.parent);
            out += ",";
            key(out, "columns");
            string_array(out, ref.columns);
            out += ",";
            key(out, "parent_columns");
            string_array(out, ref.parent_columns);
            out += "}";
        }
        out += "]}";
    }
    out += "]}";
    return out;
}

std::string trailer_line(const BackupTrailer& t) {
    std::string out = "{";
    key(out, "trailer");
    out += "true,";
    key(out, "row_counts");
    out += "{";
    for (std::size_t i = 0; i < t.row_counts.size(); ++i) {
        if (i > 0) out += ",";
        key(out, t.row_counts[i].first);
        out += std::to_string(t.row_counts[i].second);
    }
    out += "},";
    key(out, "total_rows");
    out += std::to_string(t.total_rows);
    out += ",";
    key(out, "body_sha256");
    append_json_string(out, t.body_sha256);
    out += "}";
    return out;
}

void append_row_line(std::string& out, std::string_view table, std::string_view row_json,
                     const std::string* parent_table, std::string_view parent_key) {
    out += "{\"table\":";
    append_json_string(out, table);
    out += ",\"row\":";
    out += row_json;
    out += ",\"parent\":";
    if (parent_table == nullptr) {
        out += "null}\n";
        return;
    }
    out += "{\"table\":";
    append_json_string(out, *parent_table);
    out += ",\"key\":";
    append_json_string(out, parent_key);
    out += "}}\n";
}

RowLine parse_row_line(std::string_view line) {
    static constexpr const char* kWhat = "backup row line";
    JsonParser p(line, kWhat);
    RowLine result;
    bool have_table = false, have_row = false, have_parent = false, have_changed = false;
    p.ws();
    p.expect('{');
    for (;;) {
        p.ws();
        std::string key;
        p.string(&key);
        p.ws();
        p.expect(':');
        p.ws();
        if (key == "table" && !have_table) {
            if (p.peek() != '"') p.fail("\"table\" must be a string");
            p.string(&result.table);
            have_table = true;
        } else if (key == "row" && !have_row) {
            if (p.peek() != '{') p.fail("\"row\" must be an object");
            const std::size_t start = p.pos();
            const std::size_t end = find_json_container_end(line, start, kWhat);
            result.row = line.substr(start, end - start);
            p.set_pos(end);
            have_row = true;
        } else if (key == "parent" && !have_parent) {
            have_parent = true;
            if (p.peek() == 'n') {
                p.literal("null");
            } else {
                // {"table": string, "key": string}, in any order, nothing else.
                static constexpr const char* kParentShape =
                    "\"parent\" must be null or {\"table\": string, \"key\": string}";
                std::string parent_table, parent_key;
                bool have_parent_table = false, have_parent_key = false;
                p.expect('{');
                for (;;) {
                    p.ws();
                    std::string name;
                    p.string(&name);
                    p.ws();
                    p.expect(':');
                    p.ws();
                    if (p.peek() != '"') p.fail(kParentShape);
                    if (name == "table" && !have_parent_table) {
                        p.string(&parent_table);
                        have_parent_table = true;
                    } else if (name == "key" && !have_parent_key) {
                        p.string(&parent_key);
                        have_parent_key = true;
                    } else {
                        p.fail(kParentShape);
                    }
                    p.ws();
                    if (p.peek() == ',') {
                        p.expect(',');
                        continue;
                    }
                    p.expect('}');
                    break;
                }
                if (!have_parent_table || !have_parent_key) p.fail(kParentShape);
                result.parent_table = std::move(parent_table);
                result.parent_key = std::move(parent_key);
            }
        } else if (key == "changed" && !have_changed) {
            have_changed = true;
            static constexpr const char* kChangedShape = "\"changed\" must be an array of strings";
            std::vector<std::string> columns;
            p.expect('[');
            p.ws();
            if (p.peek() == ']') p.fail(kChangedShape);
            for (;;) {
                p.ws();
                if (p.peek() != '"') p.fail(kChangedShape);
                columns.emplace_back();
                p.string(&columns.back());
                p.ws();
                if (p.peek() == ',') {
                    p.expect(',');
                    continue;
                }
                p.expect(']');
                break;
            }
            result.changed = std::move(columns);
        } else {
            p.fail("unexpected or repeated key \"" + key + "\"");
        }
        p.ws();
        if (p.peek() == ',') {
            p.expect(',');
            continue;
        }
        p.expect('}');
        break;
    }
    p.ws();
    if (!p.at_end()) p.fail("trailing characters");
    if (!have_table || !have_row) p.fail("\"table\" and \"row\" are required");
    return result;
}

RowLineFormat::RowLineFormat(std::string_view table, const std::string* parent_table) {
    prefix_ = "{\"table\":";
    append_json_string(prefix_, table);
    prefix_ += ",\"row\":";
    if (parent_table != nullptr) {
        parent_prefix_ = ",\"parent\":{\"table\":";
        append_json_string(parent_prefix_, *parent_table);
        parent_prefix_ += ",\"key\":";
    }
}

void RowLineFormat::append(std::string& out, std::string_view row_json,
                           const std::string_view* parent_key,
                           const std::string* changed_json) const {
    begin(out);
    out += row_json;
    if (parent_key == nullptr || parent_prefix_.empty()) {
        end_without_parent(out, changed_json);
    } else {
        out += parent_prefix_;
        append_json_string(out, *parent_key);
        end_after_parent_key(out, changed_json);
    }
}

void RowLineFormat::end_without_parent(std::string& out, const std::string* changed_json) const {
    out += ",\"parent\":null";
    if (changed_json != nullptr) {
        out += ",\"changed\":";
        out += *changed_json;
    }
    out += "}\n";
}

void RowLineFormat::end_after_parent_key(std::string& out, const std::string* changed_json) const {
    out += "}";
    if (changed_json != nullptr) {
        out += ",\"changed\":";
        out += *changed_json;
    }
    out += "}\n";
}

BackupHeader parse_header_line(std::string_view line) {
    const ParsedLine parsed(line, kHeader);
    const JsonRef v = parsed.root();
    if (!v.is_object()) bad(kHeader, "the first line is not a JSON object");
    const std::optional<JsonRef> format = v.find("format");
    if (!format || !format->is_string() || format->text() != kBackupFormatName)
        bad(kHeader, "the first line does not name the format \"pg_batchguard backup\"");
    BackupHeader h;
    h.version = static_cast<int>(
        to_int64(member(v, "version", JsonValue::Kind::kNumber, kHeader), kHeader, "version"));
    if (h.version < kOldestBackupFormatVersion || h.version > kBackupFormatVersion)
        throw Error(sqlstate::kBackupCorrupt, "unsupported backup format version",
                    "The file has version " + std::to_string(h.version) +
                        "; this pg_batchguard reads versions " +
                        std::to_string(kOldestBackupFormatVersion) + " to " +
                        std::to_string(kBackupFormatVersion) + ".");
    h.backup_id = string_member(v, "backup_id", kHeader);
    h.owner = string_member(v, "owner", kHeader);
    if (const std::optional<JsonRef> label = v.find("label"); label && label->is_string())
        h.label = std::string(label->text());
    h.source = string_member(v, "source", kHeader);
    h.include_children = member(v, "include_children", JsonValue::Kind::kBool, kHeader).boolean();
    h.server_version = string_member(v, "server_version", kHeader);
    h.encoding = string_member(v, "encoding", kHeader);
    h.created_at = string_member(v, "created_at", kHeader);
    h.expires_at = string_member(v, "expires_at", kHeader);
    const JsonRef settings = member(v, "settings", JsonValue::Kind::kObject, kHeader);
    h.settings.reserve(settings.size());
    for (JsonRef setting : settings.members()) {
        if (!setting.value().is_string())
            bad(kHeader, "setting \"" + std::string(setting.text()) + "\" is not a string");
        h.settings.emplace_back(setting.text(), setting.value().text());
    }
    const JsonRef tables = member(v, "tables", JsonValue::Kind::kArray, kHeader);
    // Reserved: the names in `names` point into the tables and must not move.
    h.tables.reserve(tables.size());
    // Names looked up in a hash set: a hostile header with many tables stays linear.
    std::unordered_set<std::string_view> names;
    names.reserve(tables.size());
    for (JsonRef t : tables.items()) {
        check_interrupts();
        if (!t.is_object()) bad(kHeader, "a table entry is not an object");
        BackupTable& table = h.tables.emplace_back();
        table.name = string_member(t, "name", kHeader);
        if (!names.insert(table.name).second)
            bad(kHeader, "table \"" + table.name + "\" is listed twice");
        const JsonRef columns = member(t, "columns", JsonValue::Kind::kArray, kHeader);
        table.columns.reserve(columns.size());
        for (JsonRef c : columns.items()) {
            if (!c.is_object()) bad(kHeader, "a column entry is not an object");
            table.columns.push_back(
                {string_member(c, "name", kHeader), string_member(c, "type", kHeader)});
        }
        table.key_columns = strings(member(t, "key", JsonValue::Kind::kArray, kHeader));
        if (h.version >= 2) {
            table.owner = string_member(t, "owner", kHeader);
            table.writable = member(t, "writable", JsonValue::Kind::kBool, kHeader).boolean();
        }
        const JsonRef references = member(t, "references", JsonValue::Kind::kArray, kHeader);
        table.references.reserve(references.size());
        for (JsonRef r : references.items()) {
            if (!r.is_object()) bad(kHeader, "a reference is not an object");
            BackupReference& ref = table.references.emplace_back();
            ref.parent = string_member(r, "parent", kHeader);
            ref.columns = strings(member(r, "columns", JsonValue::Kind::kArray, kHeader));
            ref.parent_columns =
                strings(member(r, "parent_columns", JsonValue::Kind::kArray, kHeader));
            if (ref.columns.empty() || ref.columns.size() != ref.parent_columns.size())
                bad(kHeader, "a reference's columns do not match its parent's");
        }
    }
    if (h.tables.empty()) bad(kHeader, "no tables are listed");
    for (const BackupTable& t : h.tables)
        for (const BackupReference& r : t.references)
            if (names.count(r.parent) == 0)
                bad(kHeader, "table \"" + t.name + "\" references an unlisted table");
    if (h.tables.front().name != h.source) bad(kHeader, "the first table is not the source table");
    return h;
}

bool is_trailer_line(std::string_view line) { return line.substr(0, 11) == "{\"trailer\":"; }

BackupTrailer parse_trailer_line(std::string_view line) {
    const ParsedLine parsed(line, kTrailer);
    const JsonRef v = parsed.root();
    if (!v.is_object() || !member(v, "trailer", JsonValue::Kind::kBool, kTrailer).boolean())
        bad(kTrailer, "the last line is not a trailer");
    BackupTrailer t;
    const JsonRef counts = member(v, "row_counts", JsonValue::Kind::kObject, kTrailer);
    t.row_counts.reserve(counts.size());
    for (JsonRef count : counts.members()) {
        if (count.value().kind() != JsonValue::Kind::kNumber)
            bad(kTrailer, "a row count is not a number");
        t.row_counts.emplace_back(count.text(), to_int64(count.value(), kTrailer, count.text()));
    }
    t.total_rows = to_int64(member(v, "total_rows", JsonValue::Kind::kNumber, kTrailer), kTrailer,
                            "total_rows");
    t.body_sha256 = string_member(v, "body_sha256", kTrailer);
    return t;
}

BackupStreamReader::BackupStreamReader(ByteSource& decompressed,
                                       std::unique_ptr<Hasher> body_hasher)
    : lines_(decompressed), hasher_(std::move(body_hasher)) {}

void BackupStreamReader::read_header() {
    lines_.set_max_line(kMaxHeaderLine);
    std::optional<std::string_view> line;
    try {
        line = lines_.next();
    } catch (const Error& e) {
        if (std::string_view(e.what()) != "backup line too long") throw;
        throw Error(sqlstate::kBackupCorrupt, "backup header too long",
                    "The header line is longer than " + std::to_string(kMaxHeaderLine) + " bytes.");
    }
    lines_.set_max_line(LineSplitter::kDefaultMaxLine);
    if (!line)
        throw Error(sqlstate::kBackupCorrupt, "backup data is truncated", "The header is missing.");
    require_utf8(*line, 1);
    header_ = parse_header_line(*line);
    for (std::size_t i = 0; i < header_->tables.size(); ++i)
        table_index_.emplace(header_->tables[i].name, i);
    counts_.assign(header_->tables.size(), 0);
    if (hasher_) {
        hasher_->update(line->data(), line->size());
        hasher_->update("\n", 1);
    }
}

const BackupHeader& BackupStreamReader::header() {
    if (!header_) read_header();
    return *header_;
}

std::optional<RowLine> BackupStreamReader::next_row() {
    if (!header_) read_header();
    if (trailer_) return std::nullopt;
    std::optional<std::string_view> line = lines_.next();
    if (!line)
        throw Error(sqlstate::kBackupCorrupt, "backup data is truncated",
                    "The trailer is missing after " + std::to_string(rows_) + " rows.");
    // The file is UTF-8 text: raw bytes that are not would reach text columns as they are.
    require_utf8(*line, rows_ + 2);
    if (is_trailer_line(*line)) {
        finish(*line);
        return std::nullopt;
    }
    RowLine row = parse_row_line(*line);
    if (row.changed && header_->version < 2)
        bad("backup row line", "\"changed\" needs format version 2");
    const auto found = table_index_.find(row.table);
    if (found == table_index_.end())
        bad("backup row line", "table \"" + row.table + "\" is not listed in the header");
    const std::size_t index = found->second;
    if (row.parent_table && table_index_.count(*row.parent_table) == 0)
        bad("backup row line",
            "parent table \"" + *row.parent_table + "\" is not listed in the header");
    ++counts_[index];
    ++rows_;
    if (hasher_) {
        hasher_->update(line->data(), line->size());
        hasher_->update("\n", 1);
    }
    return row;
}

void BackupStreamReader::finish(std::string_view line) {
    BackupTrailer trailer = parse_trailer_line(line);
    if (trailer.total_rows != rows_)
        throw Error(sqlstate::kBackupCorrupt, "backup row count mismatch",
                    "The trailer counts " + std::to_string(trailer.total_rows) +
                        " rows; the file holds " + std::to_string(rows_) + ".");
    std::vector<std::int64_t> expected_counts(header_->tables.size(), 0);
    for (const auto& [name, count] : trailer.row_counts) {
        const auto found = table_index_.find(name);
        if (found == table_index_.end()) {
            if (count == 0) continue;
            throw Error(sqlstate::kBackupCorrupt, "backup row count mismatch",
                        "The trailer counts " + std::to_string(count) + " rows of " + name +
                            ", a table the header does not list.");
        }
        expected_counts[found->second] = count;
    }
    for (std::size_t i = 0; i < header_->tables.size(); ++i) {
        const std::int64_t expected = expected_counts[i];
        if (expected != counts_[i])
            throw Error(sqlstate::kBackupCorrupt, "backup row count mismatch",
                        "The trailer counts " + std::to_string(expected) + " rows of " +
                            header_->tables[i].name + "; the file holds " +
                            std::to_string(counts_[i]) + ".");
    }
    if (hasher_) {
        const std::string digest = hasher_->finish_hex();
        if (digest != trailer.body_sha256)
            throw Error(sqlstate::kBackupCorrupt, "backup checksum mismatch",
                        "The SHA-256 of the body is " + digest + "; the trailer records " +
                            trailer.body_sha256 + ".");
    }
    if (lines_.next())
        throw Error(sqlstate::kBackupCorrupt, "invalid backup data", "Lines follow the trailer.");
    trailer_ = std::move(trailer);
}

RowValueReader::RowValueReader(std::vector<std::string> columns)
    : columns_(std::move(columns)), values_(columns_.size()), present_(columns_.size()) {}

void RowValueReader::read(std::string_view row) {
    std::fill(present_.begin(), present_.end(), false);
    JsonParser p(row, "backup row");
    p.ws();
    if (p.peek() != '{') {
        p.value(nullptr, 0);  // a malformed value fails as parse_json fails
        p.ws();
        if (!p.at_end()) p.fail("trailing characters");
        throw Error(sqlstate::kBackupCorrupt, "invalid backup row", "A row is not an object.");
    }
    std::optional<std::size_t> not_text;  // a wanted value neither a string nor null
    std::size_t count = 0;
    p.expect('{');
    p.ws();
    if (p.peek() == '}') {
        p.expect('}');
    } else {
        for (;;) {
            p.ws();
            if (count == keys_.size()) keys_.emplace_back();
            std::string& key = keys_[count];
            key.clear();
            p.string(&key);
            p.ws();
            p.expect(':');
            for (std::size_t k = 0; k < count; ++k)
                if (keys_[k] == key) p.fail("duplicate key \"" + key + "\"");
            ++count;
            p.ws();
            std::optional<std::size_t> column;
            for (std::size_t c = 0; c < columns_.size() && !column; ++c)
                if (columns_[c] == key) column = c;
            if (column && p.peek() == '"') {
                values_[*column].clear();
                p.string(&values_[*column]);
                present_[*column] = true;
            } else {
                const bool null = p.peek() == 'n';
                p.value(nullptr, 1);
                if (column && !null && !not_text) not_text = column;
            }
            p.ws();
            if (p.peek() == ',') {
                p.expect(',');
                continue;
            }
            p.expect('}');
            break;
        }
    }
    p.ws();
    if (!p.at_end()) p.fail("trailing characters");
    if (not_text)
        throw Error(
            sqlstate::kBackupCorrupt, "invalid backup row",
            "A value of column \"" + columns_[*not_text] + "\" is neither a string nor null.");
}

}  // namespace batchguard
