/* ctl.c - framering-ctl: list, inspect and remove framering rings in /dev/shm (like ipcs/ipcrm for rings).
 *
 * Everything goes through fr_ring_inspect()/fr_ring_inspect_meta() (a read-only
 * mapping, header validated) and fr_ring_unlink_stale(), so the tool never attaches
 * to a ring and never disturbs a running producer or consumer. The stream format
 * comes from the meta area framering-capture fills (app/common/capture_meta.h).
 */
#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "capture_meta.h"
#include "apputil.h"
#include "frame.h"
#include "ring.h"

/* libring's creation temporaries (where O_TMPFILE cannot be used): a ring
 * being built under a private name, never a ring of that name. */
#define CREATING_PREFIX ".framering-creating-"

enum {
	EXIT_OK = 0,
	EXIT_USAGE = 1,    /* bad command or option */
	EXIT_NO_RING = 2,  /* no ring of that name */
	EXIT_LIVE = 3,     /* rm refused: a live producer holds the ring */
	EXIT_ERROR = 4,    /* not a ring, other layout version, permission, ... */
};

static void usage(FILE *out)
{
	fputs("usage: framering-ctl list [--all]\n"
	      "       framering-ctl stat NAME\n"
	      "       framering-ctl rm NAME\n"
	      "Inspect and clean up framering rings (POSIX shared memory in " APP_SHM_DIR ").\n"
	      "\n"
	      "  list        one line per ring: name, producer pid (+ alive or dead),\n"
	      "              consumers attached / at most, frames written/read (by all\n"
	      "              consumers)/dropped, fill level (for the slowest lossless\n"
	      "              consumer), end of stream, and the frame format\n"
	      "              framering-capture stored in the ring; then one line per\n"
	      "              consumer: slot, pid (+ alive or dead), every/latest, frames\n"
	      "              read and skipped, lag in frames.\n"
	      "              --all also names files in " APP_SHM_DIR " that are not rings.\n"
	      "  stat NAME   every counter of ring NAME, one 'key: value' per line, and\n"
	      "              consumer.N.* keys for each attached consumer\n"
	      "  rm NAME     remove ring NAME if its producer is gone (a stale ring);\n"
	      "              a ring with a live producer is never removed\n"
	      "  -h, --help  this text\n"
	      "\n"
	      "Nothing here attaches to a ring: running producers and consumers are not\n"
	      "disturbed, and a FIFO, directory or device at a name is refused at once,\n"
	      "never opened. Exit status: 0 ok, 1 bad command or ring name, 2 no such ring,\n"
	      "3 rm refused (live producer), 4 not a ring or other error.\n",
	      out);
}

/* The capture meta of ring NAME, or false if the ring carries none we know. */
static bool read_meta(const char *name, struct capture_meta *m)
{
	if (fr_ring_inspect_meta(name, m, sizeof(*m)) < 0)
		return false;
	return m->magic == CAPTURE_META_MAGIC && m->version == CAPTURE_META_VERSION &&
	       m->size == sizeof(*m);
}

/* The source name of M as it may be printed: bounded by its field (a
 * producer need not terminate it) and escaped. */
static const char *meta_source(const struct capture_meta *m, char *out, size_t len)
{
	return app_printable(m->source, sizeof(m->source), out, len);
}

static void format_side(char *buf, size_t len, pid_t pid, bool alive)
{
	if (!pid)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%d(%s)", (int)pid, alive ? "alive" : "dead");
}

/* What the file NAME in /dev/shm is, if not a regular file ("a FIFO", ...);
 * NULL for a regular file or one that is gone. */
static const char *file_kind(const char *name)
{
	char path[sizeof(APP_SHM_DIR) + NAME_MAX + 2]; /* any name in the directory, not only ring names */
	struct stat st;
	snprintf(path, sizeof(path), APP_SHM_DIR "/%s", name);
	if (lstat(path, &st) < 0)
		return NULL;
	switch (st.st_mode & S_IFMT) {
	case S_IFREG: return NULL;
	case S_IFIFO: return "a FIFO";
	case S_IFDIR: return "a directory";
	case S_IFLNK: return "a symbolic link";
	case S_IFCHR: return "a character device";
	case S_IFBLK: return "a block device";
	case S_IFSOCK: return "a socket";
	default: return "not a regular file";
	}
}

/* What list --all says of NAME, which fr_ring_inspect() refused with ERR. */
static const char *not_a_ring_because(const char *name, int err)
{
	static char buf[96];
	const char *kind = file_kind(name);
	if (kind) {
		snprintf(buf, sizeof(buf), "not a ring: %s", kind);
		return buf;
	}
	switch (err) {
	case -EBADMSG:
	case -EEXIST:
	case -EINVAL: /* a name no ring can have */
	case -ENAMETOOLONG:
		return "not a ring";
	case -EPROTO:
		return "a framering ring of another layout version";
	case -ENOENT:
		return "gone meanwhile";
	default:
		snprintf(buf, sizeof(buf), "not readable: %s", fr_ring_strerror(err));
		return buf;
	}
}

/* Whether a directory entry is one libring made and no ring: "." / ".."
 * and the temporaries a ring is built under before it is linked in. */
static bool not_a_ring_name(const char *name)
{
	return !strcmp(name, ".") || !strcmp(name, "..") ||
	       !strncmp(name, CREATING_PREFIX, sizeof(CREATING_PREFIX) - 1);
}

static int cmd_list(bool all)
{
	DIR *d = opendir(APP_SHM_DIR);
	if (!d) {
		app_complain("cannot read " APP_SHM_DIR ": %s", strerror(errno));
		return EXIT_ERROR;
	}
	printf("%-24s %-16s %-9s %10s %10s %8s %5s %-4s %s\n", "NAME", "PRODUCER", "CONSUMERS",
	       "WRITTEN", "READ", "DROPPED", "FILL", "EOS", "FORMAT");
	struct dirent *e;
	while ((e = readdir(d))) {
		if (not_a_ring_name(e->d_name))
			continue;
		/* fr_ring_inspect refuses anything but a regular file before opening it
		 * (a FIFO would block open()), so every entry can go through it. */
		struct fr_ring_stats st;
		int ret = fr_ring_inspect(e->d_name, &st);
		/* A name in /dev/shm is anybody's bytes: printed escaped. */
		char shown[4 * (NAME_MAX + 1)];
		app_printable(e->d_name, sizeof(e->d_name), shown, sizeof(shown));
		if (ret < 0) {
			if (all)
				printf("%-24s (%s)\n", shown, not_a_ring_because(e->d_name, ret));
			continue;
		}
		char prod[32], cons[16], fmt[64 + 4 * sizeof(((struct capture_meta *)0)->source)] = "-";
		format_side(prod, sizeof(prod), st.producer_pid, st.producer_alive);
		snprintf(cons, sizeof(cons), "%u/%u", st.consumers, st.max_consumers);
		struct capture_meta m;
		if (read_meta(e->d_name, &m)) {
			const char *fname = fr_frame_format_name(m.fourcc);
			char source[4 * sizeof(m.source)];
			snprintf(fmt, sizeof(fmt), "%ux%u %s %s", m.width, m.height, fname ? fname : "?",
				 meta_source(&m, source, sizeof(source)));
		}
		printf("%-24s %-16s %-9s %10" PRIu64 " %10" PRIu64 " %8" PRIu64 " %4.0f%% %-4s %s\n",
		       shown, prod, cons, st.records_written, st.records_read, st.records_dropped,
		       st.capacity ? 100.0 * (double)st.used / (double)st.capacity : 0.0,
		       st.eos ? "yes" : "no", fmt);
		struct fr_ring_consumer_info ci[FR_RING_MAX_CONSUMERS];
		int n = fr_ring_inspect_consumers(e->d_name, ci, FR_RING_MAX_CONSUMERS);
		for (int i = 0; i < n && i < (int)FR_RING_MAX_CONSUMERS; i++) {
			char who[32];
			format_side(who, sizeof(who), ci[i].pid, ci[i].alive);
			printf("  consumer %-2u %-16s %-6s read %" PRIu64 " skipped %" PRIu64 " lag %" PRIu64 "\n",
			       ci[i].slot, who, ci[i].mode == FR_RING_CONSUMER_LATEST ? "latest" : "every",
			       ci[i].records_read, ci[i].records_skipped, ci[i].lag_records);
		}
	}
	closedir(d);
	return EXIT_OK;
}

/* The one line for a failed fr_ring_inspect/fr_ring_unlink_stale of NAME; DOING
 * is appended ("" or ": not removed"). Returns the exit status. */
static int inspect_error(const char *name, int ret, const char *doing)
{
	if (ret == -ENOENT) {
		app_complain("no ring named '%s'%s", name, doing);
		return EXIT_NO_RING;
	}
	if (ret == -EINVAL || ret == -ENAMETOOLONG) {
		app_complain("bad ring name '%s': 1..%u characters of A-Z a-z 0-9 . _ -", name, FR_RING_NAME_MAX);
		return EXIT_USAGE;
	}
	const char *kind = ret == -EBADMSG || ret == -EEXIST ? file_kind(name) : NULL;
	if (kind)
		app_complain("'%s' in " APP_SHM_DIR " is %s, not a framering ring%s", name, kind, doing);
	else if (ret == -EPROTO)
		app_complain("'%s' is a framering ring of another layout version%s", name, doing);
	else if (ret == -EBADMSG || ret == -EEXIST)
		app_complain("'%s' in " APP_SHM_DIR " is not a framering ring (another program's segment, or "
			     "corrupt)%s", name, doing);
	else
		app_complain("'%s': %s%s", name, fr_ring_strerror(ret), doing);
	return EXIT_ERROR;
}

static int cmd_stat(const char *name)
{
	struct fr_ring_stats st;
	int ret = fr_ring_inspect(name, &st);
	if (ret < 0)
		return inspect_error(name, ret, "");
	printf("name: %s\n", name);
	printf("capacity: %" PRIu64 "\n", st.capacity);
	printf("used: %" PRIu64 "\n", st.used);
	printf("fill_percent: %.1f\n", st.capacity ? 100.0 * (double)st.used / (double)st.capacity : 0.0);
	printf("producer_pid: %d\nproducer_alive: %s\n", (int)st.producer_pid,
	       st.producer_alive ? "yes" : "no");
	printf("consumer_pid: %d\nconsumer_alive: %s\n", (int)st.consumer_pid,
	       st.consumer_alive ? "yes" : "no");
	printf("consumers: %u\nmax_consumers: %u\nconsumers_reaped: %" PRIu64 "\n", st.consumers,
	       st.max_consumers, st.consumers_reaped);
	printf("eos: %s\n", st.eos ? "yes" : "no");
	printf("on_full: %s\n", st.on_full == FR_RING_FULL_DROP ? "drop" : "block");
	printf("records_written: %" PRIu64 "\nbytes_written: %" PRIu64 "\n", st.records_written,
	       st.bytes_written);
	printf("records_read: %" PRIu64 "\nbytes_read: %" PRIu64 "\n", st.records_read, st.bytes_read);
	printf("records_dropped: %" PRIu64 "\nbytes_dropped: %" PRIu64 "\n", st.records_dropped,
	       st.bytes_dropped);
	printf("records_skipped: %" PRIu64 "\nbytes_skipped: %" PRIu64 "\n", st.records_skipped,
	       st.bytes_skipped);
	printf("producer_futex_waits: %" PRIu64 "\nproducer_futex_wakes: %" PRIu64 "\n",
	       st.producer_futex_waits, st.producer_futex_wakes);
	printf("consumer_futex_waits: %" PRIu64 "\nconsumer_futex_wakes: %" PRIu64 "\n",
	       st.consumer_futex_waits, st.consumer_futex_wakes);
	struct fr_ring_consumer_info ci[FR_RING_MAX_CONSUMERS];
	int n = fr_ring_inspect_consumers(name, ci, FR_RING_MAX_CONSUMERS);
	for (int i = 0; i < n && i < (int)FR_RING_MAX_CONSUMERS; i++) {
		unsigned k = ci[i].slot;
		printf("consumer.%u.pid: %d\nconsumer.%u.alive: %s\nconsumer.%u.mode: %s\n", k, (int)ci[i].pid, k,
		       ci[i].alive ? "yes" : "no", k, ci[i].mode == FR_RING_CONSUMER_LATEST ? "latest" : "every");
		printf("consumer.%u.records_read: %" PRIu64 "\nconsumer.%u.records_skipped: %" PRIu64
		       "\nconsumer.%u.lag_records: %" PRIu64 "\nconsumer.%u.lag_bytes: %" PRIu64 "\n",
		       k, ci[i].records_read, k, ci[i].records_skipped, k, ci[i].lag_records, k, ci[i].lag_bytes);
	}
	struct capture_meta m;
	if (read_meta(name, &m)) {
		const char *fname = fr_frame_format_name(m.fourcc);
		printf("format: %s\nwidth: %u\nheight: %u\n", fname ? fname : "?", m.width, m.height);
		printf("source_width: %u\nsource_height: %u\n", m.src_width, m.src_height);
		printf("time_base: %d/%d\nframe_rate: %d/%d\n", m.time_base_num, m.time_base_den,
		       m.fps_num, m.fps_den);
		const uint8_t color[] = {m.color_matrix, m.color_range, m.color_primaries, m.color_transfer,
					 m.chroma_location};
		static const char *const color_key[] = {"color_matrix", "color_range", "color_primaries",
							"color_transfer", "chroma_location"};
		char num[12];
		for (unsigned i = 0; i < sizeof(color); i++)
			printf("%s: %s\n", color_key[i], app_color_name(i, color[i], num));
		char source[4 * sizeof(m.source)];
		printf("source: %s\nlive: %s\nloop: %s\n", meta_source(&m, source, sizeof(source)),
		       m.flags & CAPTURE_META_LIVE ? "yes" : "no", m.flags & CAPTURE_META_LOOP ? "yes" : "no");
	}
	return EXIT_OK;
}

static int cmd_rm(const char *name)
{
	int ret = fr_ring_unlink_stale(name);
	if (ret == 0) {
		printf("removed stale ring '%s'\n", name);
		return EXIT_OK;
	}
	if (ret == -EBUSY) {
		struct fr_ring_stats st;
		if (fr_ring_inspect(name, &st) == 0 && st.producer_pid)
			app_complain("ring '%s' has a live producer (pid %d): not removed", name,
				 (int)st.producer_pid);
		else
			app_complain("ring '%s' has a live producer: not removed", name);
		return EXIT_LIVE;
	}
	return inspect_error(name, ret, ": not removed");
}

int main(int argc, char **argv)
{
	app_open_std_fds();
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(cmd, "list") || !strcmp(cmd, "ls")) {
		bool all = argc == 3 && !strcmp(argv[2], "--all");
		if (argc > 3 || (argc == 3 && !all)) {
			app_complain("usage: framering-ctl list [--all]");
			return EXIT_USAGE;
		}
		return cmd_list(all);
	}
	if (!strcmp(cmd, "stat") || !strcmp(cmd, "rm")) {
		if (argc != 3) {
			app_complain("usage: framering-ctl %s NAME", cmd);
			return EXIT_USAGE;
		}
		return !strcmp(cmd, "stat") ? cmd_stat(argv[2]) : cmd_rm(argv[2]);
	}
	app_complain("unknown command '%s' (see --help)", cmd);
	return EXIT_USAGE;
}
