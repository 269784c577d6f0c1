/* soak_hostile_producer.c - hostile-peer soak: a producer that scribbles over its own LIVE rings while consumers read them, and a C consumer mode. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "ring.h"
#include "ring_layout.h"

#define MAX_RINGS 8
#define RECENT 16 /* committed records remembered per ring, as scribble targets */

/* Every header field is named here, once, through ring_layout.h (offsetof):
 * the layout changes under this test. Each ring here has one consumer, in
 * slot 0 of the consumer table (layout 3). */
#define PRODUCER_ID producer_pid
#define CONSUMER_ID consumers[0].pid
struct field {
	const char *name;
	size_t off, size;
};
#define FIELD_(f) {#f, offsetof(struct ring_shm_header, f), sizeof(((struct ring_shm_header *)0)->f)}
#define FIELD(f) FIELD_(f) /* expand PRODUCER_ID first, so the name printed is the real one */
static const struct field F_TAIL = FIELD(tail), F_HEAD = FIELD(consumers[0].head), F_EOS = FIELD(eos),
			  F_PROD_ID = FIELD(PRODUCER_ID), F_CONS_ID = FIELD(CONSUMER_ID),
			  F_CONS_SLEEP = FIELD(consumers[0].sleeping), F_PROD_SLEEP = FIELD(producer_sleeping),
			  F_META_SEQ = FIELD(meta_seq), F_META_LEN = FIELD(meta_len),
			  F_ATTACHES = FIELD(consumer_attaches), F_ROSTER = FIELD(attached), F_LIVE = FIELD(live),
			  F_NEWEST = FIELD(newest), F_CLAIM = FIELD(claim), F_OLDEST = FIELD(oldest),
			  F_HOLD = FIELD(consumers[0].hold);

static const char *usage_text =
	"usage: soak_hostile_producer -r NAME [-r NAME ...] [--seed N] [--seconds S] [--fps N]\n"
	"                             [--capacity BYTES] [--crash] [--only SCRIBBLE,...]\n"
	"       soak_hostile_producer --consume NAME [--wait S] [--give-up N]\n"
	"Hostile-peer soak (tests/ring/soak_hostile.py drives it).\n"
	"Producer mode: creates each ring NAME (fr_ring_create, FR_RING_FULL_DROP), writes small valid\n"
	"frames at --fps (default 300) and, once a consumer has attached, from a second mapping of\n"
	"the same segment, at random moments (seeded PRNG, ~8 a second) scribbles tail, head, eos,\n"
	"owner/pid words, futex words, meta_seq/len, record headers and frame headers; holds some\n"
	"scribbles up to 300 ms (no commit rewrites them), often restores sane values after. A ring\n"
	"whose consumer detached is closed and created anew, for the next consumer. Prints\n"
	"'seed N' and 'ready' on stdout, a line per scribble on stderr. After --seconds (default 8)\n"
	"it restores tail, eos and the owner words, then closes the rings (end of stream) or, with\n"
	"--crash, _exit()s without cleanup. Capacity default 262144. --only picks scribbles from:\n"
	"tail pad_storm tail_flicker head eos owner futex meta record_header fr_frame_header restore fanout.\n"
	"Consumer mode: attach (--wait, default 5 s; --live: as a LATEST consumer), then fr_frame_peek (every 7th call\n"
	"latest) with timeouts of 2, 20, 100, 500 ms in turn, summing every byte of every plane,\n"
	"until end of stream, producer death, another error, or --give-up N (default 200)\n"
	"consecutive bad records (-ENOMSG, -EPROTO, -EBADMSG; a ring-level -EBADMSG is retried 20\n"
	"times at once, then 10 ms apart). Prints one 'consumer: ...' line (and a heartbeat on\n"
	"stderr every 2 s). Exit 0 when it ended on a library error or end of stream, 2 if the\n"
	"ring could not be opened, 5 if the library returned a frame outside the mapping, 1 on\n"
	"bad usage. A call that has not returned after 10 s says so on stderr, and the process\n"
	"stops there (for a debugger) until killed.\n";

/* ------------------------------------------------------------ helpers */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = {(time_t)(t / 1000000000u), (long)(t % 1000000000u)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static uint64_t rnd(uint64_t *s) /* splitmix64 */
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t below(uint64_t *s, uint64_t n)
{
	return n ? rnd(s) % n : 0;
}

static uint64_t peek_field(uint8_t *map, struct field f)
{
	if (f.size == 8)
		return __atomic_load_n((uint64_t *)(map + f.off), __ATOMIC_ACQUIRE);
	return __atomic_load_n((uint32_t *)(map + f.off), __ATOMIC_ACQUIRE);
}

static void poke_field(uint8_t *map, struct field f, uint64_t v)
{
	if (f.size == 8)
		__atomic_store_n((uint64_t *)(map + f.off), v, __ATOMIC_RELEASE);
	else
		__atomic_store_n((uint32_t *)(map + f.off), (uint32_t)v, __ATOMIC_RELEASE);
}

/* Put V back into field F only if it still holds what we wrote (the peer may have rewritten it). */
static void restore_field(uint8_t *map, struct field f, uint64_t ours, uint64_t v)
{
	if (f.size == 8) {
		uint64_t e = ours;
		__atomic_compare_exchange_n((uint64_t *)(map + f.off), &e, v, false, __ATOMIC_ACQ_REL,
					    __ATOMIC_ACQUIRE);
	} else {
		uint32_t e = (uint32_t)ours;
		__atomic_compare_exchange_n((uint32_t *)(map + f.off), &e, (uint32_t)v, false,
					    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	}
}

static void futex_wake_all(uint8_t *map, struct field f)
{
	syscall(SYS_futex, (uint32_t *)(map + f.off), FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* ------------------------------------------------------------ producer */

struct hring {
	const char *name;
	fr_ring_t *r;
	uint8_t *lib_data;  /* the library's mapping of the data area (to locate records) */
	uint8_t *map;       /* our second, hostile mapping of the whole segment */
	size_t map_size;
	uint64_t cap, rng;
	uint64_t real_tail; /* the tail the library last published */
	uint64_t our_tail;  /* the value we scribbled into tail, while it may still be there */
	bool tail_dirty;
	uint64_t prod_id, head_scribble, saved_head;
	bool head_dirty;
	uint64_t recent[RECENT]; /* data-area offsets of recently committed frame payloads */
	unsigned n_recent;
	uint64_t hold_until, restore_at;
	uint64_t frames, drops, errors, scribbles, lives;
};

static double t0_s;

static void say(const struct hring *h, const char *what, uint64_t a, uint64_t b)
{
	fprintf(stderr, "[%7.3f] %s %-16s 0x%" PRIx64 " 0x%" PRIx64 "\n", (double)now_ns() / 1e9 - t0_s,
		h->name, what, a, b);
}

/* After every library call: the library may have published tail (a commit, a wrap pad). */
static void track_tail(struct hring *h)
{
	uint64_t t = peek_field(h->map, F_TAIL);
	if (!h->tail_dirty || t != h->our_tail) {
		h->real_tail = t;
		h->tail_dirty = false;
	}
}

static void set_tail(struct hring *h, uint64_t v)
{
	h->our_tail = v;
	h->tail_dirty = true;
	poke_field(h->map, F_TAIL, v);
}

/* Sane control values again, so consumers may resume (records stay as they are). */
static void restore(struct hring *h)
{
	if (h->tail_dirty)
		restore_field(h->map, F_TAIL, h->our_tail, h->real_tail);
	h->tail_dirty = false;
	if (h->head_dirty)
		restore_field(h->map, F_HEAD, h->head_scribble, h->saved_head);
	h->head_dirty = false;
	poke_field(h->map, F_EOS, 0);
	poke_field(h->map, F_PROD_ID, h->prod_id);
	uint64_t s = peek_field(h->map, F_META_SEQ);
	if (s & 1)
		poke_field(h->map, F_META_SEQ, s + 1);
	if (peek_field(h->map, F_META_LEN) > FR_RING_META_SIZE)
		poke_field(h->map, F_META_LEN, 8);
	say(h, "restore", h->real_tail, 0);
}

/* ---- the scribbles: each one a function, named in the table below */

static void tail_jump(struct hring *h, uint64_t *rs)
{
	uint64_t t = h->real_tail, cap = h->cap;
	switch (below(rs, 6)) {
	case 0: set_tail(h, t + (1ull << 62)); break;
	case 1: set_tail(h, t + 8 * (1 + below(rs, cap / 4))); break; /* past the data, maybe a lap */
	case 2: set_tail(h, t - 8 * (1 + below(rs, cap / 4))); break; /* backward */
	case 3: set_tail(h, t + 1 + below(rs, 7)); break;             /* unaligned */
	case 4: set_tail(h, UINT64_MAX); break;
	default: set_tail(h, rnd(rs)); break;
	}
	say(h, "tail", t, h->our_tail);
}

/* PAD records over the whole area: one from the tail to the end, one of the whole capacity at 0. */
static void write_pads(struct hring *h, uint64_t t)
{
	uint64_t cap = h->cap, off = t & (cap - 1);
	struct ring_record_header *a = (struct ring_record_header *)(h->map + RING_HEADER_SIZE + off);
	struct ring_record_header *z = (struct ring_record_header *)(h->map + RING_HEADER_SIZE);
	__atomic_store_n(&z->len, (uint32_t)cap, __ATOMIC_RELAXED);
	__atomic_store_n(&z->type, RING_REC_PAD, __ATOMIC_RELAXED);
	if (off) {
		__atomic_store_n(&a->len, (uint32_t)(cap - off), __ATOMIC_RELAXED);
		__atomic_store_n(&a->type, RING_REC_PAD, __ATOMIC_RELAXED);
	}
}

/* PADs everywhere and a tail many laps ahead: a reader trusting it walks pads a long time. */
static void pad_storm(struct hring *h, uint64_t *rs)
{
	uint64_t t = h->real_tail;
	write_pads(h, t);
	set_tail(h, t + (below(rs, 4) ? (1ull << 62) : h->cap * (2 + below(rs, 1000))));
	say(h, "pad_storm", t, h->our_tail);
}

/* For 20-50 ms the tail flips between a bad value and the real one, and the
 * consumer is woken each time: a reader that checks one load of the tail and
 * trusts another sees the bad one unchecked. */
static void tail_flicker(struct hring *h, uint64_t *rs)
{
	uint64_t t = h->real_tail, bad;
	switch (below(rs, 5)) {
	case 0: bad = t + (1ull << 62), write_pads(h, t); break;
	case 1: bad = t + h->cap * (2 + below(rs, 1000)), write_pads(h, t); break;
	case 2: bad = t + 1 + below(rs, 7); break;
	case 3: bad = t + 8 * (1 + below(rs, h->cap / 8)); break;
	default: bad = UINT64_MAX; break;
	}
	say(h, "tail_flicker", t, bad);
	uint64_t end = now_ns() + (20 + below(rs, 31)) * 1000000u;
	while (now_ns() < end) {
		poke_field(h->map, F_TAIL, bad);
		futex_wake_all(h->map, F_CONS_SLEEP);
		for (uint64_t until = now_ns() + 20000; now_ns() < until;)
			;
		poke_field(h->map, F_TAIL, t);
		for (uint64_t until = now_ns() + 5000 + below(rs, 30000); now_ns() < until;)
			;
	}
}

static void head_jump(struct hring *h, uint64_t *rs)
{
	static const uint64_t hv[] = {0, UINT64_MAX, 1ull << 62, 3};
	uint64_t t = h->real_tail;
	h->saved_head = peek_field(h->map, F_HEAD);
	h->head_scribble = below(rs, 3) ? hv[below(rs, 4)] : below(rs, 2) ? t + 8 : t - h->cap - 8;
	h->head_dirty = true;
	poke_field(h->map, F_HEAD, h->head_scribble);
	say(h, "head", h->saved_head, h->head_scribble);
}

static void false_eos(struct hring *h, uint64_t *rs)
{
	uint64_t v = below(rs, 4) ? 1 : 0xFFFFFFFFu; /* ends a reader that has caught up */
	poke_field(h->map, F_EOS, v);
	say(h, "eos", 0, v);
}

/* Owner/pid words: mostly a live process's (the consumer's), sometimes nonsense. */
static void owner_words(struct hring *h, uint64_t *rs)
{
	uint64_t cons = peek_field(h->map, F_CONS_ID), v;
	if (below(rs, 6)) {
		poke_field(h->map, F_PROD_ID, cons);
		say(h, F_PROD_ID.name, h->prod_id, cons);
		return;
	}
	struct field f = below(rs, 2) ? F_PROD_ID : F_CONS_ID;
	v = below(rs, 2) ? 0 : rnd(rs);
	poke_field(h->map, f, v);
	say(h, f.name, cons, v);
}

static void futex_words(struct hring *h, uint64_t *rs)
{
	static const uint64_t sv[] = {0, 1, 2, 0xFFFFFFFFu};
	struct field f = below(rs, 2) ? F_CONS_SLEEP : F_PROD_SLEEP;
	uint64_t v = sv[below(rs, 4)];
	poke_field(h->map, f, v);
	if (below(rs, 2))
		futex_wake_all(h->map, f);
	say(h, f.name, 0, v);
}

static void meta_words(struct hring *h, uint64_t *rs)
{
	if (below(rs, 2)) {
		uint64_t v = peek_field(h->map, F_META_SEQ) | 1; /* a writer forever in the middle */
		poke_field(h->map, F_META_SEQ, v);
		say(h, "meta_seq", 0, v);
	} else {
		uint64_t v = below(rs, 2) ? 0xFFFFFFFFu : FR_RING_META_SIZE + 1;
		poke_field(h->map, F_META_LEN, v);
		say(h, "meta_len", 0, v);
	}
}

/* The [len|type] header of a recently committed record (read or not yet). */
static void record_header(struct hring *h, uint64_t *rs)
{
	if (!h->n_recent)
		return;
	uint64_t off = h->recent[below(rs, h->n_recent)] - RING_REC_HDR;
	struct ring_record_header *rh = (struct ring_record_header *)(h->map + RING_HEADER_SIZE + off);
	uint32_t len, type;
	switch (below(rs, 6)) {
	case 0: len = 0, type = RING_REC_DATA; break;
	case 1: len = 0xFFFFFFF8u, type = RING_REC_DATA; break;
	case 2: len = rh->len, type = (uint32_t)rnd(rs); break;
	case 3: len = (uint32_t)(h->cap - off), type = RING_REC_PAD; break;
	case 4: len = 0, type = RING_REC_PAD; break;
	default: len = (uint32_t)(h->cap + 8), type = RING_REC_DATA; break;
	}
	__atomic_store_n(&rh->len, len, __ATOMIC_RELAXED);
	__atomic_store_n(&rh->type, type, __ATOMIC_RELEASE);
	say(h, "record_header", off, ((uint64_t)type << 32) | len);
}

/* One field of the frame header inside a recently committed record. */
static void fr_frame_header(struct hring *h, uint64_t *rs)
{
	static const struct {
		const char *what;
		size_t off, size;
	} fields[] = {
#define FH(f) {"frame." #f, offsetof(struct fr_frame_header, f), sizeof(((struct fr_frame_header *)0)->f)}
		FH(magic), FH(version), FH(header_size), FH(fourcc), FH(width), FH(height), FH(plane_count),
		FH(plane[0].offset), FH(plane[0].stride), FH(plane[1].offset), FH(plane[1].stride),
		FH(plane[3].stride), FH(image_size), FH(time_base_den),
#undef FH
	};
	static const uint64_t vals[] = {0, 1, 0xFFFFFFFFull, 0x7FFFFFFFull, 16385, UINT64_MAX};
	if (!h->n_recent)
		return;
	uint64_t off = h->recent[below(rs, h->n_recent)];
	unsigned i = (unsigned)below(rs, sizeof(fields) / sizeof(fields[0]));
	uint64_t v = below(rs, 3) ? vals[below(rs, sizeof(vals) / sizeof(vals[0]))] : rnd(rs);
	uint8_t *p = h->map + RING_HEADER_SIZE + off + fields[i].off;
	if (fields[i].size == 8)
		__atomic_store_n((uint64_t *)p, v, __ATOMIC_RELAXED);
	else if (fields[i].size == 4)
		__atomic_store_n((uint32_t *)p, (uint32_t)v, __ATOMIC_RELAXED);
	else
		__atomic_store_n((uint16_t *)p, (uint16_t)v, __ATOMIC_RELAXED);
	say(h, fields[i].what, off, v);
}

static void restore_now(struct hring *h, uint64_t *rs)
{
	(void)rs;
	restore(h);
}

/* The fan-out words: the newest record's position, the producer's claim,
 * where a late consumer starts, the roster and a consumer's hold. A live
 * consumer reads newest and claim on every peek; the producer reads the
 * roster and holds on every lease. */
static void fanout_words(struct hring *h, uint64_t *rs)
{
	static const struct field *fields[] = {&F_NEWEST, &F_CLAIM, &F_OLDEST, &F_ROSTER, &F_LIVE, &F_HOLD};
	const struct field *f = fields[below(rs, sizeof(fields) / sizeof(fields[0]))];
	uint64_t t = peek_field(h->map, F_TAIL);
	uint64_t choices[] = {rnd(rs), t + 3, t - h->cap * 2, UINT64_MAX, 0, t + (1ull << 62)};
	uint64_t old = peek_field(h->map, *f), v = choices[below(rs, 6)];
	poke_field(h->map, *f, v);
	say(h, f->name, old, v);
	if (below(rs, 2))
		restore_field(h->map, *f, v, old);
}

static const struct scribble {
	const char *name;
	unsigned weight;
	void (*fn)(struct hring *h, uint64_t *rs);
} scribbles[] = {
	{"tail", 26, tail_jump},         {"pad_storm", 6, pad_storm},     {"tail_flicker", 6, tail_flicker},
	{"head", 6, head_jump},          {"eos", 2, false_eos},           {"owner", 4, owner_words},
	{"futex", 8, futex_words},       {"meta", 6, meta_words},         {"record_header", 14, record_header},
	{"fr_frame_header", 18, fr_frame_header}, {"restore", 4, restore_now}, {"fanout", 6, fanout_words},
};
#define N_SCRIBBLES (sizeof(scribbles) / sizeof(scribbles[0]))
static bool scribble_on[N_SCRIBBLES];

/* One random scribble (of those switched on) on ring H; holds some of them a while. */
static void scribble(struct hring *h)
{
	uint64_t *rs = &h->rng;
	unsigned total = 0;
	for (unsigned i = 0; i < N_SCRIBBLES; i++)
		total += scribble_on[i] ? scribbles[i].weight : 0;
	uint64_t k = below(rs, total);
	for (unsigned i = 0; i < N_SCRIBBLES; i++) {
		if (!scribble_on[i])
			continue;
		if (k < scribbles[i].weight) {
			scribbles[i].fn(h, rs);
			break;
		}
		k -= scribbles[i].weight;
	}
	h->scribbles++;
	/* Hold some a while: no commit rewrites the tail meanwhile. */
	if (below(rs, 10) < 4) {
		h->hold_until = now_ns() + below(rs, 300) * 1000000u;
		if (below(rs, 10) < 7)
			h->restore_at = h->hold_until;
	}
}

/* --only a,b,c: switch on just those scribbles (all when LIST is NULL). */
static int select_scribbles(const char *list)
{
	int n = 0;
	for (unsigned i = 0; i < N_SCRIBBLES; i++) {
		size_t len = strlen(scribbles[i].name);
		const char *p = list;
		bool on = !list;
		while (p && *p && !on) {
			on = strncmp(p, scribbles[i].name, len) == 0 && (p[len] == ',' || p[len] == 0);
			p = strchr(p, ',');
			p = p ? p + 1 : NULL;
		}
		scribble_on[i] = on;
		n += on;
	}
	return n;
}

static const struct {
	uint32_t fourcc, w, h;
} shapes[] = {
	{FR_FRAME_FMT_BGR24, 64, 48}, {FR_FRAME_FMT_GRAY8, 33, 17}, {FR_FRAME_FMT_I420, 50, 31}, {FR_FRAME_FMT_NV12, 64, 48},
};

static void produce_one(struct hring *h, bool scribble_inside)
{
	unsigned s = below(&h->rng, 4) ? 0 : 1 + (unsigned)below(&h->rng, 3); /* mostly one size */
	struct fr_frame_header *fh;
	int rc = fr_frame_reserve(h->r, shapes[s].fourcc, shapes[s].w, shapes[s].h, &fh, FR_RING_NO_WAIT);
	track_tail(h);
	if (rc == -ENOBUFS || rc == -EAGAIN) {
		h->drops++;
		return;
	}
	if (rc < 0) {
		h->errors++;
		return;
	}
	memset((uint8_t *)fh + fh->plane[0].offset, (int)(h->frames & 0xff), fh->image_size);
	uint64_t off = (uint64_t)((uint8_t *)fh - h->lib_data);
	if (scribble_inside) /* between reserve and commit */
		scribble(h);
	if (fr_frame_commit(h->r, fh) < 0) {
		fr_ring_abort(h->r);
		h->errors++;
	} else {
		h->frames++;
		h->recent[h->n_recent < RECENT ? h->n_recent++ : below(&h->rng, RECENT)] = off;
	}
	track_tail(h);
}

/* Create ring H (anew) and map it a second time, for scribbling. */
static int create_hostile(struct hring *h, uint64_t capacity)
{
	struct fr_ring_create_opts o = {.capacity = capacity, .on_full = FR_RING_FULL_DROP};
	int rc = fr_ring_create(&h->r, h->name, &o);
	if (rc < 0)
		return rc;
	h->n_recent = 0;
	h->hold_until = h->restore_at = 0;
	h->tail_dirty = h->head_dirty = false;
	h->lives++;
	char path[FR_RING_NAME_MAX + 16];
	snprintf(path, sizeof(path), "/dev/shm/%s", h->name);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	const void *base;
	fr_ring_mapping(h->r, &base, &h->map_size);
	h->lib_data = (uint8_t *)base + RING_HEADER_SIZE;
	void *m = mmap(NULL, h->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -errno;
	h->map = m;
	h->cap = h->map_size - RING_HEADER_SIZE;
	h->prod_id = peek_field(h->map, F_PROD_ID);
	track_tail(h);
	return 0;
}

static void close_hostile(struct hring *h)
{
	fr_ring_close(&h->r);
	if (h->map)
		munmap(h->map, h->map_size);
	h->map = NULL;
}

/* A consumer attached, and none is now (it ended): start a fresh ring for the next one. */
static bool consumer_left(struct hring *h)
{
	return peek_field(h->map, F_ATTACHES) > 0 && peek_field(h->map, F_ROSTER) == 0;
}

static int run_producer(const char **names, unsigned n, uint64_t seed, double seconds, unsigned fps,
			uint64_t capacity, bool crash)
{
	static struct hring rings[MAX_RINGS];
	int rc;
	t0_s = (double)now_ns() / 1e9;
	printf("seed %" PRIu64 "\n", seed);
	for (unsigned i = 0; i < n; i++) {
		struct hring *h = &rings[i];
		h->name = names[i];
		h->rng = seed * 0x100000001b3ull + i;
		if ((rc = create_hostile(h, capacity)) < 0) {
			fprintf(stderr, "soak_hostile_producer: ring '%s': %s\n", h->name, fr_ring_strerror(rc));
			for (unsigned j = 0; j <= i; j++)
				close_hostile(&rings[j]);
			return 1;
		}
	}
	printf("ready\n");
	fflush(stdout);

	uint64_t period = 1000000000u / (fps ? fps : 1), start = now_ns(), next = start;
	uint64_t end = start + (uint64_t)(seconds * 1e9), next_meta = start;
	while (now_ns() < end) {
		uint64_t now = now_ns();
		for (unsigned i = 0; i < n; i++) {
			struct hring *h = &rings[i];
			if (consumer_left(h)) {
				close_hostile(h);
				if ((rc = create_hostile(h, capacity)) < 0) {
					fprintf(stderr, "soak_hostile_producer: ring '%s' anew: %s\n", h->name,
						fr_ring_strerror(rc));
					for (unsigned j = 0; j < n; j++)
						close_hostile(&rings[j]);
					return 1;
				}
				say(h, "created_anew", h->lives, 0);
			}
			if (h->restore_at && now >= h->restore_at) {
				h->restore_at = 0;
				restore(h);
			}
			bool attached = peek_field(h->map, F_ATTACHES) > 0;
			if (now >= h->hold_until)
				produce_one(h, attached && below(&h->rng, 200) == 0);
			if (attached && now >= h->hold_until && below(&h->rng, fps) < 8) /* ~8 scribbles a second */
				scribble(h);
			if (now >= next_meta) {
				char meta[FR_RING_META_SIZE];
				snprintf(meta, sizeof(meta), "soak %s frame %" PRIu64, h->name, h->frames);
				fr_ring_set_meta(h->r, meta, strlen(meta));
			}
		}
		if (now >= next_meta)
			next_meta = now + 1000000000u;
		next += period;
		if (next < now_ns())
			next = now_ns(); /* late: do not catch up in a burst */
		sleep_until(next);
	}

	for (unsigned i = 0; i < n; i++) {
		struct hring *h = &rings[i];
		h->tail_dirty = true; /* whatever is there now: the last published tail goes back */
		h->our_tail = peek_field(h->map, F_TAIL);
		restore(h);
		printf("ring %s rings %" PRIu64 " frames %" PRIu64 " drops %" PRIu64 " errors %" PRIu64
		       " scribbles %" PRIu64 "\n",
		       h->name, h->lives, h->frames, h->drops, h->errors, h->scribbles);
	}
	printf("%s\n", crash ? "exit: crash (_exit, no cleanup)" : "exit: fr_ring_close");
	fflush(stdout);
	if (crash)
		_exit(0);
	for (unsigned i = 0; i < n; i++)
		close_hostile(&rings[i]);
	return 0;
}

/* ------------------------------------------------------------ consumer */

#define CALL_LIMIT_S 10 /* a library call that has not returned by then is stuck in the library */

static void call_stuck(int sig)
{
	(void)sig;
	static const char msg[] = "STUCK: a library call has not returned for 10 s: stuck inside the "
				  "library (waiting here, so that a debugger sees where)\n";
	_Static_assert(CALL_LIMIT_S == 10, "the message says 10 s");
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	for (;;)
		pause();
}

static uint64_t sum_bytes(uint64_t acc, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		acc += p[i];
	return acc;
}

static int run_consumer(const char *name, double wait_s, unsigned give_up, bool live)
{
	fr_ring_t *r = NULL;
	signal(SIGALRM, call_stuck);
	alarm((unsigned)wait_s + CALL_LIMIT_S);
	struct fr_ring_attach_opts ao = {live ? FR_RING_CONSUMER_LATEST : FR_RING_CONSUMER_EVERY, (int64_t)(wait_s * 1e9)};
	int rc = fr_ring_attach(&r, name, &ao);
	if (rc < 0) {
		printf("consumer: frames 0 bad 0 timeouts 0 end open:%s\n", fr_ring_strerror(rc));
		return 2;
	}
	const void *base;
	size_t size;
	fr_ring_mapping(r, &base, &size);
	const uint8_t *lo = base, *hi = lo + size;
	uint64_t frames = 0, bad = 0, timeouts = 0, sum = 0, skipped = 0, stale = 0, last_seq = 0;
	unsigned consecutive = 0, calls = 0;
	int code = 0, last_err = 0;
	const char *end = NULL;
	char meta[FR_RING_META_SIZE];
	uint64_t beat = now_ns() + 2000000000u;
	while (!end) {
		if (now_ns() > beat) { /* a heartbeat: what a consumer that never ends was doing */
			beat += 2000000000u;
			fprintf(stderr, "consumer: alive, frames %" PRIu64 " bad %" PRIu64 " timeouts %" PRIu64
				" last error %s\n", frames, bad, timeouts, last_err ? fr_ring_strerror(last_err) : "-");
		}
		struct fr_frame_header h;
		const uint8_t *rec;
		static const int64_t timeouts_ns[] = {2000000, 20000000, 100000000, 500000000};
		alarm(CALL_LIMIT_S);
		rc = fr_frame_peek(r, &h, &rec, calls % 7 == 3, &skipped, timeouts_ns[calls % 4]);
		calls++;
		alarm(0);
		if (rc == -ETIMEDOUT || rc == -EAGAIN || rc == -EINTR) {
			timeouts++;
			continue;
		}
		if (rc == -EBADMSG || rc == -EPROTO || rc == -ENOMSG) {
			last_err = rc;
			bad++;
			/* A bad frame (-ENOMSG, -EPROTO; -EBADMSG in layout 1) may still be
			 * peeked: release it. Nothing peeked and -EBADMSG: the ring itself
			 * is corrupt; try again at once a few times (a peer may be
			 * rewriting it), then 10 ms apart: never a spin. */
			int rel = fr_ring_release(r);
			if (rc == -EBADMSG && rel == -EINVAL && consecutive >= 20) {
				struct timespec ts = {0, 10000000};
				nanosleep(&ts, NULL);
			}
			if (++consecutive >= give_up)
				end = "gave-up";
			continue;
		}
		if (rc < 0) {
			end = fr_ring_strerror(rc);
			break;
		}
		consecutive = 0;
		if (frames && h.seq <= last_seq)
			stale++; /* an older frame than the last one: read past the producer's tail */
		last_seq = h.seq;
		for (uint32_t i = 0; i < h.plane_count && !end; i++) {
			const uint8_t *p = rec + h.plane[i].offset;
			size_t rows = fr_frame_plane_rows(h.fourcc, h.height, i);
			size_t row = fr_frame_plane_row_bytes(h.fourcc, h.width, i);
			if (p < lo || rows == 0 || p + (rows - 1) * h.plane[i].stride + row > hi) {
				end = "FRAME OUTSIDE THE MAPPING";
				code = 5;
				break;
			}
			for (size_t y = 0; y < rows; y++)
				sum = sum_bytes(sum, p + y * h.plane[i].stride, row);
		}
		fr_ring_release(r);
		if (++frames % 50 == 0)
			(void)fr_ring_get_meta(r, meta, sizeof(meta));
	}
	printf("consumer: frames %" PRIu64 " bad %" PRIu64 " timeouts %" PRIu64 " skipped %" PRIu64
	       " stale %" PRIu64 " sum %016" PRIx64 " end %s\n",
	       frames, bad, timeouts, skipped, stale, sum, end);
	fr_ring_close(&r);
	return code;
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"ring", required_argument, NULL, 'r'},   {"seed", required_argument, NULL, 's'},
		{"seconds", required_argument, NULL, 't'}, {"fps", required_argument, NULL, 'f'},
		{"capacity", required_argument, NULL, 'c'}, {"crash", no_argument, NULL, 'x'},
		{"consume", required_argument, NULL, 'C'}, {"wait", required_argument, NULL, 'w'},
		{"give-up", required_argument, NULL, 'g'}, {"only", required_argument, NULL, 'o'},
		{"live", no_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *names[MAX_RINGS], *consume = NULL, *only = NULL;
	unsigned n = 0, fps = 300, give_up = 200;
	uint64_t seed = (uint64_t)time(NULL), capacity = 256 * 1024;
	double seconds = 8, wait_s = 5;
	bool live = false;
	bool crash = false;
	int c;
	while ((c = getopt_long(argc, argv, "r:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (n == MAX_RINGS) {
				fprintf(stderr, "soak_hostile_producer: at most %d rings\n", MAX_RINGS);
				return 1;
			}
			names[n++] = optarg;
			break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 't': seconds = strtod(optarg, NULL); break;
		case 'f': fps = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'c': capacity = strtoull(optarg, NULL, 0); break;
		case 'x': crash = true; break;
		case 'C': consume = optarg; break;
		case 'w': wait_s = strtod(optarg, NULL); break;
		case 'g': give_up = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'L': live = true; break;
		case 'o': only = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: fputs("soak_hostile_producer: bad option (see --help)\n", stderr); return 1;
		}
	}
	if (optind < argc || (!consume && !n) || fps == 0 || fps > 100000 || seconds < 0 || give_up == 0) {
		fputs("soak_hostile_producer: need -r NAME or --consume NAME, and sane values (see --help)\n",
		      stderr);
		return 1;
	}
	if (consume)
		return run_consumer(consume, wait_s, give_up, live);
	if (select_scribbles(only) == 0) {
		fprintf(stderr, "soak_hostile_producer: --only '%s' names no scribble\n", only);
		return 1;
	}
	return run_producer(names, n, seed, seconds, fps, capacity, crash);
}
