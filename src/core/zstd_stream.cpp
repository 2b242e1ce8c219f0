#include "core/zstd_stream.hpp"

#include "core/error.hpp"

#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <pthread.h>

namespace batchguard {

namespace {

ZSTD_CCtx* cctx_of(void* p) { return static_cast<ZSTD_CCtx*>(p); }
ZSTD_DCtx* dctx_of(void* p) { return static_cast<ZSTD_DCtx*>(p); }

[[noreturn]] void compression_error(std::size_t code) {
    throw Error(sqlstate::kInternalError,
                std::string("zstd compression failed: ") + ZSTD_getErrorName(code));
}

void check_c(std::size_t code) {
    if (ZSTD_isError(code)) compression_error(code);
}

// Gathering small writes keeps the per-call overhead of zstd off the row loop.
constexpr std::size_t kGather = 128 * 1024;

// Blocks every signal while zstd may start its worker threads, so that the threads
// inherit a full mask: a process-directed signal then always reaches the main thread.
class SignalsBlocked {
  public:
    explicit SignalsBlocked(bool active) : active_(active) {
        if (!active_) return;
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &saved_);
    }
    ~SignalsBlocked() {
        if (active_) pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
    }

  private:
    bool active_;
    sigset_t saved_;
};

}  // namespace

ZstdWriter::ZstdWriter(ByteSink& sink, ZstdOptions options) : sink_(sink) {
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    if (cctx == nullptr) throw std::bad_alloc();
    cctx_ = cctx;
    const ZSTD_bounds levels = ZSTD_cParam_getBounds(ZSTD_c_compressionLevel);
    const int level = std::clamp(options.level, levels.lowerBound, levels.upperBound);
    check_c(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level));
    check_c(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1));
    if (options.workers > 0) {
        // A library built without threads refuses nbWorkers: compress single-threaded then.
        threaded_ = !ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, options.workers));
        // zstd's default job is four windows (8 MiB at level 3) and its buffers hold several
        // jobs: some 30 MiB per export. One window per job (jobs overlap, so the ratio
        // holds) takes a quarter of that.
        if (threaded_) {
            const ZSTD_compressionParameters params =
                ZSTD_getCParams(level, ZSTD_CONTENTSIZE_UNKNOWN, 0);
            const int window = 1 << params.windowLog;
            check_c(ZSTD_CCtx_setParameter(cctx, ZSTD_c_jobSize, std::max(window, 512 << 10)));
        }
    }
    out_.resize(ZSTD_CStreamOutSize());
    pending_.reserve(kGather);
}

ZstdWriter::~ZstdWriter() {
    SignalsBlocked blocked(threaded_);  // freeing joins the workers
    ZSTD_freeCCtx(cctx_of(cctx_));
}

void ZstdWriter::write(std::string_view data) {
    if (finished_) throw Error(sqlstate::kInternalError, "zstd stream already finished");
    bytes_in_ += data.size();
    if (pending_.size() + data.size() <= kGather) {
        pending_.insert(pending_.end(), data.begin(), data.end());
        return;
    }
    if (!pending_.empty()) {
        pump(std::string_view(pending_.data(), pending_.size()), false);
        pending_.clear();
    }
    if (data.size() >= kGather)
        pump(data, false);
    else
        pending_.insert(pending_.end(), data.begin(), data.end());
}

void ZstdWriter::finish() {
    if (finished_) return;
    pump(std::string_view(pending_.data(), pending_.size()), true);
    pending_.clear();
    finished_ = true;
}

void ZstdWriter::pump(std::string_view data, bool end) {
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    const ZSTD_EndDirective mode = end ? ZSTD_e_end : ZSTD_e_continue;
    for (;;) {
        ZSTD_outBuffer out{out_.data(), out_.size(), 0};
        std::size_t remaining;
        {
            SignalsBlocked blocked(threaded_);
            remaining = ZSTD_compressStream2(cctx_of(cctx_), &out, &in, mode);
        }
        check_c(remaining);
        if (out.pos > 0) {
            sink_.write(out_.data(), out.pos);
            bytes_out_ += out.pos;
        }
        if (end ? remaining == 0 : in.pos == in.size) break;
    }
}

namespace {

// Compressed input is read in chunks of this size (zstd suggests one block, 128 KiB + 3;
// any size works, and 64 KiB stays below the allocators' thresholds for mmap).
constexpr std::size_t kReadChunk = kChunkBufferSize;

thread_local std::unique_ptr<char[]> spare_chunk_buffers[2];

// One decompression context kept per thread for the next reader: creating one costs
// more than decompressing a small file (a fuzzer reads thousands per second). Only a
// small one is kept (ZstdReader::keep_contexts_up_to), so that a file with a large window
// does not pin its memory.
std::size_t kept_context_limit = std::size_t{1} << 20;
struct KeptContext {
    ZSTD_DCtx* dctx = nullptr;
    ~KeptContext() { ZSTD_freeDCtx(dctx); }
};
thread_local KeptContext kept_context;

}  // namespace

std::unique_ptr<char[]> take_chunk_buffer() {
    for (std::unique_ptr<char[]>& spare : spare_chunk_buffers)
        if (spare) return std::move(spare);
    return std::unique_ptr<char[]>(new char[kChunkBufferSize]);
}

void give_back_chunk_buffer(std::unique_ptr<char[]> buffer) {
    for (std::unique_ptr<char[]>& spare : spare_chunk_buffers)
        if (!spare) {
            spare = std::move(buffer);
            return;
        }
}

ZstdReader::ZstdReader(ByteSource& source) : source_(source) {
    ZSTD_DCtx* dctx = kept_context.dctx;
    kept_context.dctx = nullptr;
    if (dctx == nullptr) dctx = ZSTD_createDCtx();
    if (dctx == nullptr) throw std::bad_alloc();
    dctx_ = dctx;
    ZSTD_DCtx_reset(dctx, ZSTD_reset_session_and_parameters);
    // A window larger than 128 MiB would let a crafted file demand that much memory.
    ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, 27);
    in_ = take_chunk_buffer();
}

ZstdReader::~ZstdReader() {
    give_back_chunk_buffer(std::move(in_));
    if (kept_context.dctx == nullptr && ZSTD_sizeof_DCtx(dctx_of(dctx_)) <= kept_context_limit)
        kept_context.dctx = dctx_of(dctx_);
    else
        ZSTD_freeDCtx(dctx_of(dctx_));
}

void ZstdReader::keep_contexts_up_to(std::size_t bytes) { kept_context_limit = bytes; }

std::size_t ZstdReader::read(char* buffer, std::size_t capacity) {
    if (capacity == 0) return 0;
    for (;;) {
        if (in_pos_ == in_size_ && !source_done_) {
            in_size_ = source_.read(in_.get(), kReadChunk);
            in_pos_ = 0;
            bytes_in_ += in_size_;
            if (in_size_ == 0) source_done_ = true;
        }
        const bool input_left = in_pos_ < in_size_;
        if (!input_left && !frame_open_) {
            // Between frames: either the end of the data, or more input to fetch.
            if (!source_done_) continue;
            if (!any_frame_)
                throw Error(sqlstate::kBackupCorrupt, "backup data is empty",
                            "The compressed stream holds no zstd frame.");
            return 0;
        }
        ZSTD_inBuffer in{in_.get(), in_size_, in_pos_};
        ZSTD_outBuffer out{buffer, capacity, 0};
        const std::size_t hint = ZSTD_decompressStream(dctx_of(dctx_), &out, &in);
        in_pos_ = in.pos;
        if (ZSTD_isError(hint))
            throw Error(sqlstate::kBackupCorrupt, "backup data is corrupt",
                        std::string("zstd: ") + ZSTD_getErrorName(hint));
        if (input_left) any_frame_ = true;
        frame_open_ = hint != 0;
        if (out.pos > 0) return out.pos;
        if (frame_open_ && in_pos_ == in_size_ && source_done_)
            throw Error(sqlstate::kBackupCorrupt, "backup data is truncated",
                        "The compressed stream ends inside a zstd frame.");
    }
}

std::size_t StringSource::read(char* buffer, std::size_t capacity) {
    const std::size_t n = std::min({capacity, data_.size(), max_chunk_});
    std::memcpy(buffer, data_.data(), n);
    data_.remove_prefix(n);
    return n;
}

}  // namespace batchguard
