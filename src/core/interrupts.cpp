#include "core/interrupts.hpp"

namespace batchguard {

namespace {
InterruptCheck installed_check = nullptr;
}  // namespace

void set_interrupt_check(InterruptCheck check) { installed_check = check; }

void check_interrupts() {
    if (installed_check != nullptr) installed_check();
}

}  // namespace batchguard
