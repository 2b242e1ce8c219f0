#include "core/json_lines.hpp"

#include "core/error.hpp"

#include <cstring>

namespace batchguard {

std::optional<std::string_view> LineSplitter::next() {
    for (;;) {
        const char* base = buffer_.data() + start_;
        const std::size_t available = buffer_.size() - start_;
        if (const void* nl = std::memchr(base + scanned_, '\n', available - scanned_)) {
            const std::size_t length = static_cast<const char*>(nl) - base;
            start_ += length + 1;
            scanned_ = 0;
            consumed_ += length + 1;
            return std::string_view(base, length);
        }
        scanned_ = available;
        if (available > max_line_)
            throw Error(sqlstate::kBackupCorrupt, "backup line too long",
                        "A line is longer than " + std::to_string(max_line_) + " bytes.");
        if (done_) {
            if (available == 0) return std::nullopt;
            throw Error(sqlstate::kBackupCorrupt, "backup data is truncated",
                        "The last line has no line end.");
        }
        // Drop the lines already returned, then read one more chunk after the rest.
        if (start_ > 0) {
            buffer_.erase(0, start_);
            start_ = 0;
        }
        const std::size_t old_size = buffer_.size();
        buffer_.resize(old_size + chunk_);
        const std::size_t n = source_.read(buffer_.data() + old_size, chunk_);
        buffer_.resize(old_size + n);
        if (n == 0) done_ = true;
    }
}

}  // namespace batchguard
