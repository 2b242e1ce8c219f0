// Test helper: the SQLSTATE a call throws as batchguard::Error, or "ok".
#pragma once
#include "core/error.hpp"

#include <functional>
#include <string>

inline std::string sqlstate_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const batchguard::Error& e) {
        return e.sqlstate();
    }
    return "ok";
}
