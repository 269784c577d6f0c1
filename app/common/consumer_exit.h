/* consumer_exit.h - the one exit-code table of every framering consumer (framering-view, framering-dump, the Python viewer).
 *
 * A script that runs any consumer can tell from the status alone what went
 * wrong, whichever consumer it was: the numbers are shared, so they live
 * here once. The Python viewer (viewer_py/framering/view.py) uses the same
 * numbers; README's Programs section and each --help print this table
 * (CONSUMER_EXIT_HELP), so keep the three in step with the enum.
 */
#ifndef FRAMERING_CONSUMER_EXIT_H
#define FRAMERING_CONSUMER_EXIT_H

#include <errno.h>

enum consumer_exit {
	/* End of stream, q/Esc, Ctrl-C/SIGTERM, or --frames reached: nothing went wrong. */
	CONSUMER_EXIT_DONE = 0,
	/* Bad usage: an unknown option, a bad value, a bad ring name. */
	CONSUMER_EXIT_USAGE = 1,
	/* The ring is not there to read: not found within --wait, busy (all
	 * its consumer slots are taken) or not accessible (permissions). */
	CONSUMER_EXIT_NO_RING = 2,
	/* The producer died (-EOWNERDEAD) after what it wrote was read. */
	CONSUMER_EXIT_PRODUCER_DIED = 3,
	/* The ring is corrupt or foreign, so reading cannot go on: -EBADMSG
	 * (not a ring, or its indices / record headers are corrupt), -EPROTO
	 * (another layout version, or frames of another FR_FRAME_VERSION), -EEXIST
	 * (the name is not a ring), -EFAULT (the segment was shrunk under us). */
	CONSUMER_EXIT_BAD_RING = 4,
	/* The display failed (an SDL call; no display without --headless). */
	CONSUMER_EXIT_DISPLAY = 5,
	/* Anything else: an output file cannot be written, out of memory, ... */
	CONSUMER_EXIT_OTHER = 6,
	/* The producer failed: it ended the stream on an error (-EREMOTEIO,
	 * fr_ring_mark_eos_error), so the stream is not complete; its reason is
	 * printed. */
	CONSUMER_EXIT_PRODUCER_FAILED = 7,
};

/* The table as --help prints it (README's Programs section shows the same). */
#define CONSUMER_EXIT_HELP                                                                           \
	"Exit status (the same for every framering consumer):\n"                                     \
	"  0  done: end of stream, q/Esc, Ctrl-C, --frames reached\n"                                \
	"  1  bad usage (option)\n"                                                                  \
	"  2  ring missing (not found within --wait), busy (all its consumer slots taken)\n"        \
	"     or not accessible\n"                                                                   \
	"  3  the producer died\n"                                                                   \
	"  4  the ring is corrupt or foreign (not a ring, corrupt indices or records,\n"            \
	"     another version of the ring or of its frames, segment shrunk)\n"                       \
	"  5  display failure (SDL)\n"                                                               \
	"  6  anything else (output file cannot be written, out of memory, ...)\n"                 \
	"  7  the producer failed: it ended the stream on an error (its reason is printed)\n"

/* Whether ERR (a negative errno from libring) says the ring itself cannot
 * be read on: a consumer ends with CONSUMER_EXIT_BAD_RING, never retries. */
static inline int consumer_ring_broken(int err)
{
	return err == -EBADMSG || err == -EPROTO || err == -EEXIST || err == -EFAULT;
}

/* The exit code for a ring call that failed with ERR (a negative errno):
 * opening or reading. Usage errors (a bad ring name) are the caller's to
 * tell apart, since -EINVAL from a read is a bug, not bad usage. */
static inline int consumer_exit_for(int err)
{
	if (err == 0 || err == -ENODATA || err == -ECANCELED)
		return CONSUMER_EXIT_DONE;
	if (err == -ENOENT || err == -ETIMEDOUT || err == -EBUSY || err == -EACCES)
		return CONSUMER_EXIT_NO_RING;
	if (err == -EOWNERDEAD)
		return CONSUMER_EXIT_PRODUCER_DIED;
	if (err == -EREMOTEIO)
		return CONSUMER_EXIT_PRODUCER_FAILED;
	if (consumer_ring_broken(err))
		return CONSUMER_EXIT_BAD_RING;
	return CONSUMER_EXIT_OTHER;
}

/* What is wrong with a ring that broke while being read (consumer_ring_broken):
 * the end of the one line a consumer prints, after "ring 'NAME' ". */
static inline const char *consumer_read_problem(int err)
{
	switch (err) {
	case -EPROTO:
		return "carries frames of another format version than this reader knows: stopped reading";
	case -EFAULT:
		return "was shrunk (truncated) under this reader by another process: stopped reading";
	case -EBADMSG:
		return "is corrupt (bad index or record header in shared memory): stopped reading";
	default:
		return "is not a valid framering ring: stopped reading";
	}
}

#endif
