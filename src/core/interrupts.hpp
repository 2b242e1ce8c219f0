// Long loops of the core (reading a file, parsing a large header) call check_interrupts().
// The extension installs a check that runs CHECK_FOR_INTERRUPTS through the boundary's
// wrapper, so that a cancel or statement_timeout unwinds the core as a C++ exception;
// without one (unit tests, fuzzers) the call does nothing.
#pragma once
#include "core/pure.hpp"

namespace batchguard {

using InterruptCheck = void (*)();

void set_interrupt_check(InterruptCheck check);
void check_interrupts();

}  // namespace batchguard
