// Argument checks shared by the checkpoint and lease entry points: every one throws a
// batchguard::Error naming the argument (22004 for NULL, 22023 for a bad value).
#pragma once
#include "pg/postgres.hpp"

#include <optional>
#include <string_view>
#include <vector>

namespace batchguard::checkpoint {

// The job id argument `n`, validated; also names the job in every error of the call.
std::string_view job_arg(FunctionCallInfo fcinfo, int n = 0);
std::string_view item_arg(FunctionCallInfo fcinfo, int n);

// Every element of a text[] item list must be a valid id; returns the elements.
std::vector<std::string_view> item_list(Datum array, const char* what);

// A jsonb argument that must be an object when given.
std::optional<Datum> jsonb_object_arg(FunctionCallInfo fcinfo, int n, const char* name);

// The one error for a job that does not exist and for another owner's job: the same
// SQLSTATE and message, so that an error never tells whether someone else has the id.
[[noreturn]] void unknown_job(std::string_view job_id);

}  // namespace batchguard::checkpoint
