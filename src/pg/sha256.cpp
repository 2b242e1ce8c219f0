#include "pg/sha256.hpp"

#include "pg/guard.hpp"

extern "C" {
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "utils/resowner.h"
}

namespace batchguard::pg {

namespace {

ResourceOwner hashing_owner() {
    static ResourceOwner owner = nullptr;
    if (owner == nullptr)
        owner = pg_call([] { return ResourceOwnerCreate(nullptr, "pg_batchguard hashing"); });
    return owner;
}

class Sha256 : public Hasher {
  public:
    Sha256() {
        ResourceOwner owner = hashing_owner();
        ctx_ = pg_call([&] {
            ResourceOwner saved = CurrentResourceOwner;
            CurrentResourceOwner = owner;
            // This object frees the context, so it must not live in whatever memory context
            // is current: PostgreSQL built without OpenSSL pallocs it there, and a hasher
            // made inside an SPI session outlived the session's memory.
            MemoryContext saved_memory = MemoryContextSwitchTo(TopMemoryContext);
            pg_cryptohash_ctx* ctx = nullptr;
            PG_TRY();
            { ctx = pg_cryptohash_create(PG_SHA256); }
            PG_FINALLY();
            {
                CurrentResourceOwner = saved;
                MemoryContextSwitchTo(saved_memory);
            }
            PG_END_TRY();
            return ctx;
        });
        if (ctx_ == nullptr) throw std::bad_alloc();
        if (pg_cryptohash_init(ctx_) < 0) fail();
    }

    ~Sha256() override {
        try {
            pg_call([&] { pg_cryptohash_free(ctx_); });
        } catch (...) {
        }
    }

    void update(const void* data, std::size_t size) override {
        if (pg_cryptohash_update(ctx_, static_cast<const uint8*>(data), size) < 0) fail();
    }

    std::string finish_hex() override {
        uint8 digest[PG_SHA256_DIGEST_LENGTH];
        if (pg_cryptohash_final(ctx_, digest, sizeof digest) < 0) fail();
        return to_hex(digest, sizeof digest);
    }

  private:
    [[noreturn]] void fail() {
        throw Error(sqlstate::kInternalError,
                    std::string("could not compute SHA-256: ") + pg_cryptohash_error(ctx_));
    }

    pg_cryptohash_ctx* ctx_ = nullptr;
};

}  // namespace

std::unique_ptr<Hasher> make_sha256() { return std::make_unique<Sha256>(); }

}  // namespace batchguard::pg
