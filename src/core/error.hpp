#pragma once
#include "core/pure.hpp"

#include <stdexcept>
#include <string>
#include <utility>

namespace batchguard {

// SQLSTATEs used by the core; src/pg maps them to PostgreSQL's error codes.
namespace sqlstate {
inline constexpr const char* kNullValueNotAllowed = "22004";
inline constexpr const char* kInvalidParameterValue = "22023";
inline constexpr const char* kStringDataRightTruncation = "22001";
inline constexpr const char* kInvalidTextRepresentation = "22P02";
inline constexpr const char* kUndefinedObject = "42704";
inline constexpr const char* kUndefinedTable = "42P01";
inline constexpr const char* kDatatypeMismatch = "42804";
inline constexpr const char* kUniqueViolation = "23505";
inline constexpr const char* kActiveSqlTransaction = "25001";
inline constexpr const char* kDuplicateObject = "42710";
inline constexpr const char* kObjectNotInPrerequisiteState = "55000";
inline constexpr const char* kInvalidAuthorization = "28000";
inline constexpr const char* kInsufficientPrivilege = "42501";
inline constexpr const char* kFeatureNotSupported = "0A000";
inline constexpr const char* kInternalError = "XX000";
inline constexpr const char* kConfigurationLimitExceeded = "53400";
inline constexpr const char* kUndefinedColumn = "42703";
inline constexpr const char* kWrongObjectType = "42809";
inline constexpr const char* kInvalidTransactionState = "25000";
inline constexpr const char* kIoError = "58030";
inline constexpr const char* kProgramLimitExceeded = "54000";
inline constexpr const char* kDatetimeFieldOverflow = "22008";
inline constexpr const char* kDiskFull = "53100";
// Custom codes (class PB, documented in docs/api.md).
inline constexpr const char* kLeaseLost = "PB001";
// Backups (PB1xx).
inline constexpr const char* kBackupExpired = "PB101";
inline constexpr const char* kBackupFileMissing = "PB102";
inline constexpr const char* kBackupCorrupt = "PB103";
inline constexpr const char* kBackupFileUnreadable = "PB104";
inline constexpr const char* kBackupDetached = "PB105";

}  // namespace sqlstate

// The one error type the C++ code throws; the SQL entry guard turns it into ereport(ERROR).
class Error : public std::runtime_error {
  public:
    Error(const char* state, std::string message, std::string detail = {}, std::string hint = {})
        : std::runtime_error(message),
          sqlstate_(state),
          detail_(std::move(detail)),
          hint_(std::move(hint)) {}

    const char* sqlstate() const noexcept { return sqlstate_; }
    const std::string& detail() const noexcept { return detail_; }
    const std::string& hint() const noexcept { return hint_; }

  private:
    const char* sqlstate_;
    std::string detail_;
    std::string hint_;
};

}  // namespace batchguard
