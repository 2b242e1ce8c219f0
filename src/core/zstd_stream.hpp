// Streaming zstd compression and decompression with bounded memory. The writer turns on
// the frame checksum (zstd -t and every reader verify it); the reader rejects corrupt and
// truncated input with clear errors. Bytes go to a ByteSink and come from a ByteSource,
// which src/pg implements with PostgreSQL's file APIs.
#pragma once
#include "core/pure.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace batchguard {

class ByteSink {
  public:
    virtual ~ByteSink() = default;
    virtual void write(const char* data, std::size_t size) = 0;
};

class ByteSource {
  public:
    virtual ~ByteSource() = default;
    // Reads up to `capacity` bytes into `buffer`; 0 means end of input.
    virtual std::size_t read(char* buffer, std::size_t capacity) = 0;
};

// Buffers of kChunkBufferSize bytes (a read chunk: ZstdReader's input, a LineSplitter's
// first buffer), two kept per thread for the next reader: a fuzz target reads thousands
// of small files per second, and a fresh 64 KiB buffer each time (allocated, poisoned and
// quarantined under AddressSanitizer) cost more than reading them. Not zero-filled.
inline constexpr std::size_t kChunkBufferSize = 64 * 1024;
std::unique_ptr<char[]> take_chunk_buffer();
void give_back_chunk_buffer(std::unique_ptr<char[]> buffer);

struct ZstdOptions {
    int level = 3;
    // zstd worker threads (0 = compress in the calling thread). The threads only run
    // zstd code; they are created with every signal blocked.
    int workers = 0;
};

class ZstdWriter {
  public:
    ZstdWriter(ByteSink& sink, ZstdOptions options);
    ~ZstdWriter();
    ZstdWriter(const ZstdWriter&) = delete;
    ZstdWriter& operator=(const ZstdWriter&) = delete;

    void write(std::string_view data);
    // Ends the frame (epilogue and checksum) and flushes everything to the sink.
    void finish();

    std::uint64_t bytes_in() const { return bytes_in_; }
    std::uint64_t bytes_out() const { return bytes_out_; }

  private:
    void pump(std::string_view data, bool end);

    ByteSink& sink_;
    void* cctx_ = nullptr;  // ZSTD_CCtx
    std::vector<char> out_;
    std::vector<char> pending_;  // small writes are gathered before they reach zstd
    std::uint64_t bytes_in_ = 0;
    std::uint64_t bytes_out_ = 0;
    bool threaded_ = false;
    bool finished_ = false;
};

class ZstdReader : public ByteSource {
  public:
    explicit ZstdReader(ByteSource& source);
    ~ZstdReader() override;
    ZstdReader(const ZstdReader&) = delete;
    ZstdReader& operator=(const ZstdReader&) = delete;

    // Decompresses up to `capacity` bytes into `buffer`; 0 means the end of the data,
    // reached only after every frame was complete and its checksum verified.
    std::size_t read(char* buffer, std::size_t capacity) override;

    std::uint64_t bytes_in() const { return bytes_in_; }

    // The largest decompression context kept for the next reader of the thread (default
    // 1 MiB). A fuzz target raises it: a frame that declares a large window otherwise
    // costs a fresh multi-megabyte window buffer per execution.
    static void keep_contexts_up_to(std::size_t bytes);

  private:
    ByteSource& source_;
    void* dctx_ = nullptr;        // ZSTD_DCtx
    std::unique_ptr<char[]> in_;  // not zero-filled: every byte is read before it is used
    std::size_t in_pos_ = 0;
    std::size_t in_size_ = 0;
    std::uint64_t bytes_in_ = 0;
    bool source_done_ = false;
    bool frame_open_ = false;  // inside a frame that has not ended yet
    bool any_frame_ = false;
};

// Memory sinks/sources for tests and small payloads.
class StringSink : public ByteSink {
  public:
    void write(const char* data, std::size_t size) override { data_.append(data, size); }
    const std::string& data() const { return data_; }

  private:
    std::string data_;
};

class StringSource : public ByteSource {
  public:
    explicit StringSource(std::string_view data, std::size_t max_chunk = 1 << 20)
        : data_(data), max_chunk_(max_chunk) {}
    std::size_t read(char* buffer, std::size_t capacity) override;

  private:
    std::string_view data_;
    std::size_t max_chunk_;
};

}  // namespace batchguard
