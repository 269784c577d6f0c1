/* ringtest.h - helpers shared by the ring tests: unique ring names, segment cleanup, watchdog, children. */
#ifndef FRAMERING_RINGTEST_H
#define FRAMERING_RINGTEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Fill BUF with a ring name unique to this process and call: "frt-<pid>-<n>-TAG".
 * Every name starts with the prefix rt_cleanup() removes. */
void rt_name(char *buf, size_t size, const char *tag);

/* Path of NAME's segment in /dev/shm. */
void rt_shm_path(char *buf, size_t size, const char *name);

/* Whether /dev/shm/NAME exists. */
int rt_shm_exists(const char *name);

/* Play a side of ring NAME that holds its liveness lock (byte BYTE of the
 * segment file, RING_LOCK_PRODUCER or RING_LOCK_CONSUMER) without being a
 * fr_ring_t: open the file and take the lock. Returns the descriptor (the lock
 * lives until it is closed), or -1 with errno set. */
int rt_hold_lock(const char *name, unsigned byte);

/* Remove every /dev/shm segment whose name this process made (also at exit,
 * and from the watchdog), so a failed test leaves nothing behind. */
void rt_cleanup(void);

/* Register a child to be SIGKILLed if the watchdog fires; forget it again. */
void rt_track_child(pid_t pid);
void rt_untrack_child(pid_t pid);

/* Arm (seconds > 0) or disarm (0) a watchdog: if it fires, print WHAT on
 * stderr, kill the tracked children, remove the segments and exit(1). A hang
 * is a test failure, never an endless ctest run. */
void rt_watchdog(unsigned seconds, const char *what);

/* CLOCK_MONOTONIC in ns; sleep for NS nanoseconds. */
uint64_t rt_now_ns(void);
void rt_sleep_ns(uint64_t ns);

/* Integer from environment variable NAME, or DEF if unset/invalid. */
uint64_t rt_env_u64(const char *name, uint64_t def);

/* A fast deterministic PRNG (splitmix64) and a 64-bit hash of a buffer. */
uint64_t rt_mix64(uint64_t x);
uint64_t rt_rand(uint64_t *state);
uint64_t rt_hash(const void *data, size_t len, uint64_t seed);

/* Wait for child PID (no hang: retries EINTR); returns its exit code,
 * 128+signal if it was killed, or -1. */
int rt_wait_child(pid_t pid);

/* Command line of every test program: --help prints DESCRIPTION and the
 * usage and exits 0; one optional argument is a cmocka test-name filter
 * ("test_eos", "test_*wait*"); anything else is an error (exit 1). */
void rt_parse_args(int argc, char **argv, const char *description);

#endif
