/* platform.h - the operating-system services the ring needs: futex, process liveness, shm naming, clocks, SIGBUS guard. */
#ifndef FRAMERING_PLATFORM_H
#define FRAMERING_PLATFORM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t plat_now_ns(void);

/* Sleep on the shared (cross-process: no FUTEX_PRIVATE_FLAG) futex word ADDR
 * while it holds EXPECTED, at most timeout_ns (>= 0). Returns 0 when woken,
 * -EAGAIN if the word had changed, -ETIMEDOUT, -EINTR. */
int plat_futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t timeout_ns);

/* Wake up to N sleepers of ADDR. */
void plat_futex_wake(_Atomic uint32_t *addr, int n);

/* This process's identity as stored in the ring (pid | start time << 22). */
uint64_t plat_self_owner(void);

/* Whether the process OWNER names still runs: same pid, same start time, not
 * a zombie. A pid of another process namespace cannot be seen and counts as alive. */
bool plat_owner_alive(uint64_t owner);

/* The pid part of OWNER. */
pid_t plat_owner_pid(uint64_t owner);

/* Wait until something is created in the directory that holds shm segments,
 * or timeout_ns passes (>= 0; no polling: inotify). Returns 0 or -ETIMEDOUT /
 * -EINTR. *state is opaque, starts as -1 and must be released with plat_watch_close(). */
int plat_watch_shm_dir(int *state, int64_t timeout_ns);
void plat_watch_close(int *state);

/* Give the shm segment FROM (a name with its leading '/') the second name TO,
 * atomically, failing with -EEXIST if TO exists: how a fully built ring is
 * published. */
int plat_shm_link(const char *from, const char *to);

/* Keep a SIGBUS inside the mapping [ADDR, ADDR+LEN) from killing the
 * process. Touching a page of a shared mapping beyond the end of its file
 * raises SIGBUS, so a peer that shrinks the segment (ftruncate) could crash
 * us. On such a fault the whole range is replaced by anonymous zero pages of
 * protection PROT: the faulting access completes (reading zeros), so do all
 * later ones, and *LOST becomes true; the ring calls then fail with -EFAULT.
 * Any other SIGBUS meets the handler that was installed before ours (by
 * default: terminate with a core dump): ours steps aside for it. A handler
 * installed later replaces ours until the next call puts ours back.
 * Returns 0, or -ENOSPC when RING_GUARD_SLOTS mappings are guarded at once,
 * or a negative errno from sigaction. */
int plat_guard_mapping(void *addr, size_t len, int prot, _Atomic bool *lost);

/* Stop guarding the mapping at ADDR; call before unmapping it. */
void plat_unguard_mapping(void *addr);

/* Spin hint for a busy-wait loop. */
static inline void plat_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

#endif
