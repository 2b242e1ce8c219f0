#include "core/json_lines.hpp"

#include "core/error.hpp"
#include "core/interrupts.hpp"

#include <algorithm>
#include <cstring>

namespace batchguard {

LineSplitter::~LineSplitter() {
    if (capacity_ == kChunkBufferSize) give_back_chunk_buffer(std::move(buffer_));
}

std::optional<std::string_view> LineSplitter::next() {
    for (;;) {
        const char* base = buffer_.get() + start_;
        const std::size_t available = end_ - start_;
        if (available > scanned_) {
            if (const void* nl = std::memchr(base + scanned_, '\n', available - scanned_)) {
                const std::size_t length = static_cast<const char*>(nl) - base;
                start_ += length + 1;
                scanned_ = 0;
                consumed_ += length + 1;
                return std::string_view(base, length);
            }
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
            std::memmove(buffer_.get(), base, available);
            end_ = available;
            start_ = 0;
        }
        // Read into the free space; grow (doubling, but never past what the longest allowed
        // line needs) only when less than half a chunk is left: a source that returns a few
        // bytes at a time must not make the buffer grow.
        if (capacity_ - end_ < chunk_ / 2 + 1) {
            const std::size_t needed = end_ + chunk_;
            const std::size_t grown = std::max(needed, std::min(2 * capacity_, max_line_ + chunk_));
            // (the first buffer of a splitter is one chunk: a kept one when it can be)
            std::unique_ptr<char[]> larger(grown == kChunkBufferSize
                                               ? take_chunk_buffer()
                                               : std::unique_ptr<char[]>(new char[grown]));
            if (end_ > 0) std::memcpy(larger.get(), buffer_.get(), end_);
            buffer_ = std::move(larger);
            capacity_ = grown;
        }
        check_interrupts();  // a long line is read chunk by chunk
        const std::size_t n = source_.read(buffer_.get() + end_, capacity_ - end_);
        end_ += n;
        if (n == 0) done_ = true;
    }
}

}  // namespace batchguard
