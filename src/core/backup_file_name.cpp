#include "core/backup_file_name.hpp"

namespace batchguard {

namespace {

constexpr std::string_view kSuffix = ".jsonl.zst";

}  // namespace

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

std::optional<std::uint64_t> parse_decimal(std::string_view digits, std::uint64_t max) {
    if (digits.empty() || digits.size() > 20) return std::nullopt;
    if (digits.size() > 1 && digits[0] == '0') return std::nullopt;
    std::uint64_t value = 0;
    for (char c : digits) {
        if (c < '0' || c > '9') return std::nullopt;
        const std::uint64_t d = static_cast<std::uint64_t>(c - '0');
        if (value > (max - d) / 10) return std::nullopt;
        value = value * 10 + d;
    }
    return value;
}

bool is_lowercase_uuid(std::string_view s) {
    if (s.size() != 36) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !is_lower_hex(s[i])) return false;
    }
    return true;
}

std::optional<BackupFileName> parse_backup_file_name(std::string_view name) {
    if (name.size() <= 37 + kSuffix.size() || !name.ends_with(kSuffix)) return std::nullopt;
    const std::string_view id = name.substr(0, 36);
    if (!is_lowercase_uuid(id) || name[36] != '-') return std::nullopt;
    const std::string_view digits = name.substr(37, name.size() - 37 - kSuffix.size());
    const std::optional<std::uint64_t> xid = parse_decimal(digits, UINT64_MAX);
    if (!xid) return std::nullopt;
    return BackupFileName{std::string(id), *xid};
}

std::optional<std::uint32_t> parse_database_folder_name(std::string_view name) {
    const std::optional<std::uint64_t> oid = parse_decimal(name, UINT32_MAX);
    if (!oid || *oid == 0) return std::nullopt;
    return static_cast<std::uint32_t>(*oid);
}

}  // namespace batchguard
