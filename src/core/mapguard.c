/* Guarded file mappings: a model file truncated while it is mapped must not kill the process.
 *
 * Reading a page of a MAP_SHARED or MAP_PRIVATE file mapping that lies past the file's current
 * end raises SIGBUS. Checking the file's size before each use cannot close the window (the file
 * can shrink between the check and the read, on any of the compute threads), and jumping out of
 * the signal handler (siglongjmp) would abandon a thread pool's task half done, with its
 * barriers and locks in an unknown state. So the handler does the one thing that is safe
 * wherever the fault happened: it maps anonymous zero pages (MAP_FIXED, read-only) over the
 * rest of the guarded range from the faulting page on, marks the range damaged and returns; the
 * faulting load runs again and reads zeros. The computation finishes with wrong numbers, and
 * the code that owns the mapping checks core_mapguard_damaged() at its own safe points (the
 * engine after each forward pass) and fails the request with an error instead of using them.
 * mmap is a plain system call (no lock in the C library), which makes it usable here although
 * POSIX does not list it as async-signal-safe; the range table is read lock-free with atomics.
 *
 * A SIGBUS outside every guarded range goes to the handler that was installed before (ASan's,
 * or the default action, which ends the process as it would have without this file). */
#include "core.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GUARD_SLOTS 256

typedef struct guard_slot {
    atomic_int claimed;     /* an adder owns the slot */
    _Atomic uintptr_t base; /* 0 = not (yet) guarded; set last, after size */
    _Atomic size_t size;
    atomic_bool damaged;
} guard_slot;

static guard_slot slots[GUARD_SLOTS];
static struct sigaction previous;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static atomic_bool installed;

static void on_sigbus(int sig, siginfo_t *si, void *uctx) {
    uintptr_t a = (uintptr_t)si->si_addr;
    for (int i = 0; i < GUARD_SLOTS; i++) {
        uintptr_t b = atomic_load(&slots[i].base);
        size_t n = atomic_load(&slots[i].size);
        if (!b || a < b || a - b >= n) continue;
        uintptr_t page = a & ~((uintptr_t)sysconf(_SC_PAGESIZE) - 1);
        if (page < b) page = b;
        void *m = mmap((void *)page, b + n - page, PROT_READ,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (m == MAP_FAILED) break; /* cannot repair: behave as if unguarded */
        atomic_store(&slots[i].damaged, true);
        return;
    }
    if (previous.sa_flags & SA_SIGINFO) {
        if (previous.sa_sigaction) previous.sa_sigaction(sig, si, uctx);
        return;
    }
    if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
        return;
    }
    /* Default action: reinstate it; returning re-executes the load, which faults again. */
    signal(SIGBUS, SIG_DFL);
}

static void install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &previous) == 0) atomic_store(&installed, true);
}

int core_mapguard_add(const void *addr, size_t size) {
    if (!addr || !size) return -1;
    pthread_once(&install_once, install);
    if (!atomic_load(&installed)) return -1;
    for (int i = 0; i < GUARD_SLOTS; i++) {
        int expect = 0;
        if (!atomic_compare_exchange_strong(&slots[i].claimed, &expect, 1)) continue;
        atomic_store(&slots[i].size, size);
        atomic_store(&slots[i].damaged, false);
        atomic_store(&slots[i].base, (uintptr_t)addr); /* the handler sees it from now on */
        return i;
    }
    core_log(CORE_LOG_WARN, "mapguard: more than %d mapped files; this one is unguarded",
             GUARD_SLOTS);
    return -1;
}

void core_mapguard_remove(int id) {
    if (id < 0 || id >= GUARD_SLOTS) return;
    atomic_store(&slots[id].base, 0);
    atomic_store(&slots[id].claimed, 0);
}

bool core_mapguard_damaged(int id) {
    return id >= 0 && id < GUARD_SLOTS && atomic_load(&slots[id].damaged);
}
