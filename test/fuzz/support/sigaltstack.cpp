// sigaltstack() answered from memory when it is only asked, for every fuzz target.
//
// ASan's __cxa_throw interceptor asks the kernel for the thread's alternate signal stack on
// every throw (__asan_handle_no_return unpoisons it), and the parsers under test throw on
// nearly every malformed input. On a virtual machine a system call costs more than parsing
// the input: this one took a quarter of fuzz_json's time (perf record -g). The setting only
// changes when someone sets it, through this same function (the sanitizers and libFuzzer
// call sigaltstack; the C library never sets one), so a query is answered from the last
// setting this thread set or read, and whether we are on that stack now is worked out as
// the kernel does, from the stack pointer. Anything else goes to the kernel.
//
// Not instrumented: ASan calls it while it sets itself up.
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

namespace {

// <linux/signal.h>'s flag, which the C library's headers leave out.
constexpr int kAutoDisarm = static_cast<int>(1U << 31);

thread_local bool setting_known = false;
thread_local stack_t setting;

}  // namespace

extern "C" __attribute__((disable_sanitizer_instrumentation)) int sigaltstack(const stack_t* ss,
                                                                              stack_t* old) {
    if (ss == nullptr && old != nullptr && setting_known) {
        *old = setting;
        if (!(setting.ss_flags & SS_DISABLE)) {
            const auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
            const auto bottom = reinterpret_cast<std::uintptr_t>(setting.ss_sp);
            if (here > bottom && here - bottom <= setting.ss_size) old->ss_flags = SS_ONSTACK;
        }
        return 0;
    }
    const long rc = syscall(SYS_sigaltstack, ss, old);
    // After a change, the next query asks the kernel again. A stack set with SS_AUTODISARM
    // is disarmed by the kernel itself while a handler runs on it: never remembered.
    setting_known = false;
    if (rc == 0 && ss == nullptr && old != nullptr && !(old->ss_flags & kAutoDisarm)) {
        setting = *old;
        setting.ss_flags &= ~SS_ONSTACK;
        setting_known = true;
    }
    return static_cast<int>(rc);
}
