// Splits a byte stream into lines with bounded memory: the buffer holds at most one
// line plus one read chunk (it never grows past the limit plus a chunk, however long a
// hostile line is), and a line longer than the limit is an error.
#pragma once
#include "core/pure.hpp"
#include "core/zstd_stream.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace batchguard {

class LineSplitter {
  public:
    // 1 GiB: PostgreSQL cannot hold a larger row value anyway.
    static constexpr std::size_t kDefaultMaxLine = std::size_t{1} << 30;

    explicit LineSplitter(ByteSource& source, std::size_t max_line = kDefaultMaxLine,
                          std::size_t chunk = 64 * 1024)
        : source_(source), max_line_(max_line), chunk_(chunk) {}
    ~LineSplitter();
    LineSplitter(const LineSplitter&) = delete;
    LineSplitter& operator=(const LineSplitter&) = delete;

    // The next line without its '\n' (valid until the next call), or nullopt at the end.
    // Data after the last '\n' is an error: every line of a backup ends with one.
    std::optional<std::string_view> next();

    std::uint64_t bytes_consumed() const { return consumed_; }
    // Changes the longest line accepted from the next line on.
    void set_max_line(std::size_t max_line) { max_line_ = max_line; }

  private:
    ByteSource& source_;
    std::size_t max_line_;
    std::size_t chunk_;
    // Not a std::string: growing one zero-fills it, a chunk's worth per read.
    std::unique_ptr<char[]> buffer_;
    std::size_t capacity_ = 0;
    std::size_t end_ = 0;      // bytes held
    std::size_t start_ = 0;    // first byte of the next line
    std::size_t scanned_ = 0;  // bytes after start_ known not to hold '\n'
    std::uint64_t consumed_ = 0;
    bool done_ = false;
};

}  // namespace batchguard
