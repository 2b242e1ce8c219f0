// A one-byte digest for the fuzz targets: cheap, and still lets a mutated body fail its
// trailer's checksum (SHA-256 comes from PostgreSQL, which the targets do not link).
#pragma once
#include "core/hasher.hpp"

#include <cstddef>
#include <string>

class XorHasher : public batchguard::Hasher {
  public:
    // Not instrumented for coverage: its loop is no code under test, and tracing each byte's
    // comparison cost more than the hashing.
    __attribute__((no_sanitize("coverage"))) void update(const void* data,
                                                         std::size_t size) override {
        for (std::size_t i = 0; i < size; ++i) h_ ^= static_cast<const unsigned char*>(data)[i];
    }
    std::string finish_hex() override { return batchguard::to_hex(&h_, 1); }

  private:
    unsigned char h_ = 0;
};
