// A SHA-256 hasher as the core sees it. The core never includes PostgreSQL, so the real
// implementation (PostgreSQL's cryptohash) lives in src/pg; unit tests use a test double.
#pragma once
#include "core/pure.hpp"

#include <cstddef>
#include <memory>
#include <string>

namespace batchguard {

class Hasher {
  public:
    virtual ~Hasher() = default;
    virtual void update(const void* data, std::size_t size) = 0;
    // The digest as lowercase hex; the hasher is not used afterwards.
    virtual std::string finish_hex() = 0;
};

using HasherFactory = std::unique_ptr<Hasher> (*)();

std::string to_hex(const unsigned char* data, std::size_t size);

}  // namespace batchguard
