#include "core/backup_folders.hpp"

#include "core/backup_file_name.hpp"

#include <map>

namespace batchguard {

namespace {

// "key value" lines after a first line naming the record; unknown keys are ignored, a
// repeated key or a malformed line makes the record invalid.
std::optional<std::map<std::string, std::string, std::less<>>> key_values(std::string_view text,
                                                                          std::string_view kind) {
    if (text.size() > 4096) return std::nullopt;
    std::map<std::string, std::string, std::less<>> out;
    bool first = true;
    while (!text.empty()) {
        const std::size_t end = text.find('\n');
        if (end == std::string_view::npos) return std::nullopt;  // every line ends with \n
        const std::string_view line = text.substr(0, end);
        text.remove_prefix(end + 1);
        if (first) {
            if (line != kind) return std::nullopt;
            first = false;
            continue;
        }
        const std::size_t space = line.find(' ');
        if (space == std::string_view::npos || space == 0) return std::nullopt;
        if (!out.emplace(std::string(line.substr(0, space)), std::string(line.substr(space + 1)))
                 .second)
            return std::nullopt;
    }
    if (first) return std::nullopt;
    return out;
}

constexpr std::string_view kMarkerKind = "pg_batchguard backup folder";
constexpr std::string_view kInstanceKind = "pg_batchguard server instance";

}  // namespace

bool is_instance_id(std::string_view s) {
    if (s.size() != 16) return false;
    for (char c : s)
        if (!is_lower_hex(c)) return false;
    return true;
}

std::optional<BackupFolderName> parse_backup_folder_name(std::string_view name) {
    const std::size_t dash = name.find('-');
    const std::string_view digits = name.substr(0, dash);
    const std::optional<std::uint32_t> oid = parse_database_folder_name(digits);
    if (!oid) return std::nullopt;
    BackupFolderName out;
    out.database = *oid;
    if (dash != std::string_view::npos) {
        const std::string_view instance = name.substr(dash + 1);
        if (!is_instance_id(instance)) return std::nullopt;
        out.instance = std::string(instance);
    }
    return out;
}

std::string backup_folder_name(std::uint32_t database, std::string_view instance) {
    std::string out = std::to_string(database);
    if (!instance.empty()) {
        out += '-';
        out += instance;
    }
    return out;
}

std::optional<DroppedFolderName> parse_dropped_folder_name(std::string_view name) {
    constexpr std::string_view kInfix = ".dropped-";
    const std::size_t at = name.find(kInfix);
    if (at == std::string_view::npos) return std::nullopt;
    const std::string_view folder = name.substr(0, at);
    if (!parse_backup_folder_name(folder)) return std::nullopt;
    const std::optional<std::uint64_t> when =
        parse_decimal(name.substr(at + kInfix.size()), INT64_MAX);
    if (!when) return std::nullopt;
    return DroppedFolderName{std::string(folder), static_cast<std::int64_t>(*when)};
}

std::string dropped_folder_name(std::string_view folder, std::int64_t dropped_at) {
    return std::string(folder) + ".dropped-" + std::to_string(dropped_at < 0 ? 0 : dropped_at);
}

std::string format_folder_marker(const FolderMarker& m) {
    return std::string(kMarkerKind) + "\ninstance " + m.instance + "\nsystem_identifier " +
           std::to_string(m.system_identifier) + "\ndatabase " + std::to_string(m.database) +
           "\ntoken " + m.token + "\n" +
           (m.previous_system_identifier != 0
                ? "previous_system_identifier " + std::to_string(m.previous_system_identifier) +
                      "\n"
                : std::string());
}

std::optional<FolderMarker> parse_folder_marker(std::string_view text) {
    const auto kv = key_values(text, kMarkerKind);
    if (!kv) return std::nullopt;
    const auto get = [&](std::string_view key) -> std::optional<std::string_view> {
        const auto it = kv->find(key);
        if (it == kv->end()) return std::nullopt;
        return std::string_view(it->second);
    };
    const auto instance = get("instance");
    const auto system = get("system_identifier");
    const auto database = get("database");
    const auto token = get("token");
    if (!instance || !system || !database || !token || !is_instance_id(*instance))
        return std::nullopt;
    if (!token->empty() && !is_lowercase_uuid(*token)) return std::nullopt;
    const auto system_value = parse_decimal(*system, UINT64_MAX);
    const auto database_value = parse_decimal(*database, UINT32_MAX);
    if (!system_value || !database_value || *database_value == 0) return std::nullopt;
    std::uint64_t previous_value = 0;
    if (const auto previous = get("previous_system_identifier")) {
        const auto parsed = parse_decimal(*previous, UINT64_MAX);
        if (!parsed) return std::nullopt;
        previous_value = *parsed;
    }
    return FolderMarker{std::string(*instance), *system_value,
                        static_cast<std::uint32_t>(*database_value), std::string(*token),
                        previous_value};
}

std::string format_instance_record(const InstanceRecord& r) {
    return std::string(kInstanceKind) + "\ninstance " + r.instance + "\nsystem_identifier " +
           std::to_string(r.system_identifier) + "\ndata_directory " + std::to_string(r.device) +
           ":" + std::to_string(r.inode) + "\n";
}

std::optional<InstanceRecord> parse_instance_record(std::string_view text) {
    const auto kv = key_values(text, kInstanceKind);
    if (!kv) return std::nullopt;
    const auto instance = kv->find("instance");
    const auto system = kv->find("system_identifier");
    const auto directory = kv->find("data_directory");
    if (instance == kv->end() || system == kv->end() || directory == kv->end()) return std::nullopt;
    if (!is_instance_id(instance->second)) return std::nullopt;
    const std::string_view dir = directory->second;
    const std::size_t colon = dir.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    const auto system_value = parse_decimal(system->second, UINT64_MAX);
    const auto device = parse_decimal(dir.substr(0, colon), UINT64_MAX);
    const auto inode = parse_decimal(dir.substr(colon + 1), UINT64_MAX);
    if (!system_value || !device || !inode) return std::nullopt;
    return InstanceRecord{instance->second, *system_value, *device, *inode};
}

}  // namespace batchguard
