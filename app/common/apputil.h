/* apputil.h - small helpers every framering program shares: signals, clocks, progress lines, parsing. */
#ifndef FRAMERING_APPUTIL_H
#define FRAMERING_APPUTIL_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ring.h"

/* First thing in main(): open /dev/null on each of fds 0, 1, 2 that is closed
 * (a program started with 2>&-). Else the first file the program opens gets
 * fd 2 and every line meant for stderr is written into it: a --raw output, a
 * recording, a ring segment. */
void app_open_std_fds(void);

/* Set by SIGINT/SIGTERM once app_install_stop_signals() ran; the main loop polls it. */
extern volatile sig_atomic_t app_stop_requested;

/* Install SIGINT/SIGTERM handlers that set app_stop_requested and interrupt
 * the ring registered with app_interrupt_ring() (no SA_RESTART, so other
 * blocking calls return EINTR), and ignore SIGPIPE. */
void app_install_stop_signals(void);

/* Register R (NULL: none) as the ring the stop handler interrupts with
 * fr_ring_interrupt(): its current or next blocking call returns -ECANCELED
 * at once, so a stop that lands between the check of app_stop_requested
 * and the wait is not slept through. Register NULL before closing R: this
 * returns only once no handler (on any thread) can still be using R. */
void app_interrupt_ring(fr_ring_t *r);

/* CLOCK_MONOTONIC in nanoseconds / seconds. */
uint64_t app_now_ns(void);
double app_now_s(void);

/* Whether stderr is a terminal (progress lines are shown only then). */
bool app_stderr_is_tty(void);

/* Rewrite the one live progress line on stderr (printf-style). Does nothing
 * unless stderr is a TTY; app_progress_end() finishes the line (from any
 * thread: whatever else goes to stderr calls it first). */
void app_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void app_progress_end(void);

/* The one line a program prints for a problem: "PROGRAM: message\n" on
 * stderr, after finishing any progress line. */
void app_complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Copy IN (at most INLEN bytes, up to a NUL) to OUT (OUTLEN > 0 bytes, always
 * terminated, cut if short) with every byte that is not printable ASCII, and
 * the backslash, written as \xNN: names and messages that come from a segment
 * or a directory never reach a terminal as control sequences. Returns OUT. */
const char *app_printable(const char *in, size_t inlen, char *out, size_t outlen);

/* The one line for a stream that the producer of R (ring NAME) ended on an
 * error (a read returned -EREMOTEIO): its reason, made printable. */
void app_complain_producer_failed(const fr_ring_t *r, const char *name);

/* fr_ring_attach() that also ends on a stop: it waits (as AO says) in slices
 * of at most 100 ms and returns -EINTR once app_stop_requested is set, also
 * for a stop that came before the call or between two slices (nothing can
 * interrupt a handle that does not exist yet, and a signal that lands just
 * before a blocking call does not wake it). */
int app_attach(fr_ring_t **r, const char *name, const struct fr_ring_attach_opts *ao);

/* The one line for a consumer whose attach to ring NAME failed with ERR (a
 * negative errno; WAIT_S: how long it waited), and the consumer exit status
 * for it (consumer_exit.h): not found, busy, bad name, not a ring, other. */
int app_complain_attach_failed(const char *name, double wait_s, int err);

/* Whether NAME can be a ring's name; if not, the one line for it. For a check
 * at parse time, before a program opens anything (fr_ring_inspect() checks the
 * name before it looks at a segment). */
bool app_ring_name_ok(const char *name);

/* Where libring keeps a ring's segment: ring NAME is the file APP_SHM_DIR "/NAME"
 * (libring/src/platform_linux.c, SHM_DIR). */
#define APP_SHM_DIR "/dev/shm"

/* Whether PATH may be opened for writing (and truncated) as output WHAT ("--raw",
 * "output", ...) of a consumer of ring RING; if not, the one line for it. It may
 * not when it is the segment of RING (the same file, by device and inode, under
 * any name or link), the place that segment has or will have (APP_SHM_DIR/RING,
 * there or not), or the segment of any other framering ring: truncating a
 * segment shrinks it under its producer and every consumer (-EFAULT for all).
 * Any other file, in /dev/shm or not, may be written. For a check before a
 * program opens any output. */
bool app_output_ok(const char *what, const char *path, const char *ring);

/* The one line for an option getopt_long() did not know (it returned '?'):
 * "-x" for a short one, which may sit inside a cluster ("-qx", "-b:v") where
 * argv[optind - 1] is still the argument before it, else the long one as given. */
void app_complain_unknown_option(char *const argv[]);

/* The text of the last app_complain() (without the program's name), cut to
 * FR_RING_EOS_MESSAGE_MAX - 1 bytes: what a producer that fails passes on to its
 * consumers with fr_ring_mark_eos_error(). "" if nothing was complained about. */
const char *app_last_complaint(void);

/* fr_frame_color_name() of CODE, or the number in BUF when it has no name. */
const char *app_color_name(unsigned field, unsigned code, char buf[static 12]);

/* Parse "WxH" (both 1..16384); returns 0 or -1. */
int app_parse_size(const char *s, unsigned *w, unsigned *h);

/* Parse a non-negative integer / a duration in seconds ("2.5"); 0 or -1. */
int app_parse_u64(const char *s, uint64_t *out);
int app_parse_seconds(const char *s, double *out);

/* Percentile (0..100) of n samples; sorts the array in place. 0 for n == 0. */
double app_percentile(double *v, size_t n, double pct);

#endif
