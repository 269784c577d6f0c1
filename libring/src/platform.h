/* platform.h - the operating-system services the ring needs: futex, shm files, liveness locks, clocks, SIGBUS guard. */
#ifndef FRAMERING_PLATFORM_H
#define FRAMERING_PLATFORM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t plat_now_ns(void);

/* ------------------------------------------------------------ futex */

/* Sleep on the shared (cross-process: no FUTEX_PRIVATE_FLAG) futex word ADDR
 * while it holds EXPECTED, at most timeout_ns (>= 0). Returns 0 when woken,
 * -EAGAIN if the word had changed, -ETIMEDOUT, -EINTR. */
int plat_futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t timeout_ns);

/* Wake up to N sleepers of ADDR. */
void plat_futex_wake(_Atomic uint32_t *addr, int n);

/* ------------------------------------------------------------ segment files */

/* Tests only: make plat_shm_create() take the named way, as where O_TMPFILE
 * or /proc is missing. */
extern bool plat_force_named_tmp;

/* Longest path plat_shm_create() may write into tmp_path. */
#define PLAT_SHM_PATH_MAX 512

/* Open the existing segment PATH ("/name") read-write or read-only, and
 * fstat it into *st. Anything but a regular file is refused at once, before
 * open() can block on it (a FIFO) or reach a driver (a device node), and a
 * symbolic link is never followed: -EBADMSG ("not a ring"). Returns the
 * descriptor (close-on-exec) or a negative errno (-ENOENT, -EACCES, ...).
 * The file calls here report the system's EPERM as -EACCES: -EPERM has a
 * ring meaning of its own ("not on this side"). */
int plat_shm_open(const char *path, bool writable, struct stat *st);

/* Create a new, nameless segment of SIZE bytes with permission bits MODE
 * (exactly, whatever the umask) and back every byte of it now, so that a
 * short /dev/shm fails here with -ENOSPC instead of raising SIGBUS on a
 * later first touch. Returns the descriptor or a negative errno.
 * TMP_PATH (PLAT_SHM_PATH_MAX bytes) receives "" when the file has no name
 * at all (O_TMPFILE: a crash leaves nothing behind), or, where the system
 * cannot do that, the unique private name it was made under; pass it to
 * plat_shm_publish() / plat_shm_discard(). */
int plat_shm_create(size_t size, mode_t mode, char tmp_path[PLAT_SHM_PATH_MAX]);

/* Give the segment made by plat_shm_create() the name PATH, atomically:
 * -EEXIST if PATH exists (nothing is replaced). */
int plat_shm_publish(int fd, const char *tmp_path, const char *path);

/* Remove the name PATH ("/name"): 0 or a negative errno (-ENOENT, -EACCES). */
int plat_shm_unlink(const char *path);

/* Remove the private name plat_shm_create() may have given (no-op for ""). */
void plat_shm_discard(const char *tmp_path);

/* 1 if PATH names the file open at FD now, 0 if it names another file or
 * nothing, or a negative errno. */
int plat_shm_names(const char *path, int fd);

/* Bytes free for new segments in the file system that holds them (statvfs),
 * or 0 if unknown. */
uint64_t plat_shm_free_bytes(void);

/* ------------------------------------------------------------ liveness locks */

/* A side holds an open-file-description lock (F_OFD_SETLK) on one byte of
 * the segment file for as long as it is attached. The kernel drops it when
 * the last descriptor of that open file goes, i.e. when the process exits
 * or dies however it dies, in any pid namespace; nobody has to see the
 * holder in /proc, and there is no pid reuse question. Two descriptors from
 * two open() calls conflict even within one process. A mapping of the file
 * holds the open file too: a side that leaves but keeps its mapping must
 * unlock explicitly, and a child forked (without exec) keeps the side alive. */

/* Take the write lock on byte BYTE of FD without waiting: 0, -EBUSY if
 * another open file holds it, or a negative errno. */
int plat_lock_byte(int fd, uint64_t byte);

/* Drop our lock on byte BYTE of FD. */
void plat_unlock_byte(int fd, uint64_t byte);

/* 1 if another open file (not FD's own) holds a lock on byte BYTE of FD's
 * file, 0 if none does, or a negative errno. */
int plat_byte_locked(int fd, uint64_t byte);

/* ------------------------------------------------------------ waiting for a name */

/* Wait until something is created in the directory that holds shm segments,
 * or timeout_ns passes (>= 0; no polling: inotify). Returns 0 or -ETIMEDOUT /
 * -EINTR. *state is opaque, starts as -1 and must be released with
 * plat_watch_close(); the first call only sets the watch up and returns 0,
 * so that a caller can look for its name after the watch exists. */
int plat_watch_shm_dir(int *state, int64_t timeout_ns);
void plat_watch_close(int *state);

/* ------------------------------------------------------------ SIGBUS guard */

/* Keep a SIGBUS inside the mapping [ADDR, ADDR+LEN) from killing the
 * process. Touching a page of a shared mapping beyond the end of its file
 * raises SIGBUS, so a peer that shrinks the segment (ftruncate) could crash
 * us. On such a fault the whole range is replaced by anonymous zero pages of
 * protection PROT: the faulting access completes (reading zeros), so do all
 * later ones, and *LOST becomes true; the ring calls then fail with -EFAULT.
 * Any other SIGBUS goes on to the handler that was installed before ours
 * (called from ours; ours stays installed, so mappings stay guarded), or,
 * if that was the default action, ends the process with SIGBUS as it would
 * have without us. A handler installed later replaces ours until the next
 * call puts ours back. Returns 0, or -ENOSPC when RING_GUARD_SLOTS mappings
 * are guarded at once, or a negative errno from sigaction. */
int plat_guard_mapping(void *addr, size_t len, int prot, _Atomic bool *lost);

/* Stop guarding the mapping at ADDR; call before unmapping it. Returns only
 * once no SIGBUS handler that may have looked at it still runs, so the
 * address range can be unmapped and reused safely. */
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
