// test_framering.cpp - the C++17 wrapper (framering.hpp) against the real ring.
//
// test_framering [CASE...]: run the named cases (all without arguments); each case is one
// function below. A failed CHECK prints file:line, the expression and the values, and the
// case fails; a hang is ended by an alarm (a failure, never an endless run).
#include <atomic>

// framering.hpp's test seam: where a peek has just said ESTALE (its ring was replaced) and the
// consumer has not yet turned to following, the consumer interrupts itself once when asked to,
// which is an interrupt() from another thread landing exactly there.
namespace {
std::atomic<bool> interrupt_after_stale{false};
}
#define FRAMERING_TEST_SEAM_AFTER_STALE() (interrupt_after_stale.exchange(false) ? interrupt() : (void)0)

#include <framering/framering.hpp>

#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <unistd.h>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
namespace fr = framering;

namespace {

int failures = 0;

struct CheckFailed {};

void fail(const char *file, int line, const std::string &msg)
{
	std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, msg.c_str());
	++failures;
	throw CheckFailed{};
}

// Print a value; small integers (uint8_t) as numbers, not characters.
template <class T>
void show(std::ostream &s, const T &v)
{
	if constexpr (std::is_integral_v<T>)
		s << +v;
	else
		s << v;
}

template <class A, class B>
std::string both(const char *ea, const char *eb, const A &a, const B &b)
{
	std::ostringstream s;
	s << ea << " == " << eb << " (";
	show(s, a);
	s << " vs ";
	show(s, b);
	s << ")";
	return s.str();
}

#define CHECK(cond)                                                     \
	do {                                                            \
		if (!(cond))                                            \
			fail(__FILE__, __LINE__, "CHECK(" #cond ")");   \
	} while (0)
#define CHECK_EQ(a, b)                                                          \
	do {                                                                    \
		const auto &va_ = (a);                                          \
		const auto &vb_ = (b);                                          \
		if (!(va_ == vb_))                                              \
			fail(__FILE__, __LINE__, both(#a, #b, va_, vb_));       \
	} while (0)
// EXPR throws framering::error with errno ERR and a what() that contains TEXT.
#define CHECK_THROWS(expr, err, text)                                                           \
	do {                                                                                    \
		bool thrown_ = false;                                                           \
		try {                                                                           \
			(void)(expr);                                                           \
		} catch (const fr::error &e_) {                                                 \
			thrown_ = true;                                                         \
			if (e_.errno_value() != (err))                                          \
				fail(__FILE__, __LINE__, std::string(#expr " threw errno ") +   \
					 std::to_string(e_.errno_value()) + " (" + e_.what() +  \
					 "), expected " #err);                                  \
			if (!std::strstr(e_.what(), (text)))                                    \
				fail(__FILE__, __LINE__, std::string(#expr ": what() is '") +   \
					 e_.what() + "', expected it to contain '" + (text) + "'"); \
		}                                                                               \
		if (!thrown_)                                                                   \
			fail(__FILE__, __LINE__, #expr " did not throw (expected " #err ")");   \
	} while (0)

// A ring name unique to this process and call; "frt-" is the prefix the ring tests' cleanup removes.
std::string unique_name(const char *tag)
{
	static int n;
	return "frt-" + std::to_string(getpid()) + "-" + std::to_string(n++) + "-" + tag;
}

bool shm_exists(const std::string &name) { return access(("/dev/shm/" + name).c_str(), F_OK) == 0; }

std::uint8_t pattern(std::uint64_t seq, unsigned plane, std::size_t y, std::size_t x)
{
	return static_cast<std::uint8_t>(seq * 31 + plane * 7 + y * 3 + x);
}

void fill(fr::Reservation &out)
{
	for (unsigned i = 0; i < out.plane_count(); i++) {
		fr::MutablePlane p = out.plane(i);
		for (std::size_t y = 0; y < p.rows; y++)
			for (std::size_t x = 0; x < p.row_bytes; x++)
				p.row(y)[x] = pattern(out.seq(), i, y, x);
	}
}

// Whether every byte of every plane of F is pattern(); the first bad one is reported.
void check_pixels(const fr::Frame &f)
{
	for (unsigned i = 0; i < f.plane_count(); i++) {
		fr::Plane p = f.plane(i);
		for (std::size_t y = 0; y < p.rows; y++)
			for (std::size_t x = 0; x < p.row_bytes; x++)
				if (p.row(y)[x] != pattern(f.seq(), i, y, x))
					fail(__FILE__, __LINE__, "frame " + std::to_string(f.seq()) + " plane " +
						 std::to_string(i) + " byte (" + std::to_string(y) + ", " +
						 std::to_string(x) + ") differs");
	}
}

// Static properties: move-only handles, the error type.
static_assert(!std::is_copy_constructible_v<fr::Producer> && std::is_nothrow_move_constructible_v<fr::Producer>);
static_assert(!std::is_copy_constructible_v<fr::Consumer> && std::is_nothrow_move_constructible_v<fr::Consumer>);
static_assert(!std::is_copy_constructible_v<fr::Frame> && std::is_nothrow_move_constructible_v<fr::Frame>);
static_assert(!std::is_copy_constructible_v<fr::Reservation> && std::is_nothrow_move_constructible_v<fr::Reservation>);
static_assert(!std::is_copy_assignable_v<fr::Frame> && std::is_nothrow_move_assignable_v<fr::Frame>);
static_assert(std::is_base_of_v<std::system_error, fr::error>);
// A frame being written, seen through a const Reservation (e.g. handed to code that only checks
// it), is read-only: its planes and record are pointers to const. Writing takes a non-const one.
static_assert(std::is_same_v<decltype(std::declval<const fr::Reservation &>().plane(0)), fr::Plane>);
static_assert(std::is_same_v<decltype(std::declval<const fr::Reservation &>().plane(0).data), const std::uint8_t *>);
static_assert(std::is_same_v<decltype(std::declval<const fr::Reservation &>().record()), const std::uint8_t *>);
static_assert(std::is_same_v<decltype(std::declval<fr::Reservation &>().plane(0)), fr::MutablePlane>);
static_assert(std::is_same_v<decltype(std::declval<fr::Reservation &>().record()), std::uint8_t *>);

// ---------------------------------------------------------------- cases

// Frames of every format, odd sizes too, go through with their header and every pixel.
void round_trip()
{
	std::string name = unique_name("rt");
	fr::Producer prod(name, {1u << 20});
	fr::Consumer cons(name);
	struct Case {
		fr::Format f;
		std::uint32_t w, h;
		unsigned planes;
	};
	const Case cases[] = {{fr::Format::bgr24, 64, 48, 1}, {fr::Format::rgb24, 33, 17, 1},
			      {fr::Format::gray8, 31, 7, 1},  {fr::Format::i420, 33, 17, 3},
			      {fr::Format::nv12, 64, 48, 2}};
	std::uint64_t seq = 0;
	for (const Case &c : cases) {
		fr::Reservation out = prod.reserve(c.f, c.w, c.h, 1s);
		CHECK(out.pending());
		CHECK_EQ(out.seq(), seq);
		CHECK_EQ(out.plane_count(), c.planes);
		fill(out);
		out.set_pts(1000 + static_cast<std::int64_t>(seq));
		out.set_time_base(1, 90000);
		out.set_flags(FR_FRAME_FLAG_KEY);
		out.header().color_range = FR_FRAME_RANGE_FULL;
		out.commit();
		CHECK(!out.pending());

		fr::Frame f = cons.peek(1s);
		CHECK(f && !f.released());
		CHECK_EQ(f.seq(), seq);
		CHECK(f.format() == c.f);
		CHECK_EQ(std::string(fr::format_name_of(f.format())), std::string(fr_frame_format_name(f.fourcc())));
		CHECK_EQ(f.width(), c.w);
		CHECK_EQ(f.height(), c.h);
		CHECK_EQ(f.plane_count(), c.planes);
		CHECK(f.pts() && *f.pts() == 1000 + static_cast<std::int64_t>(seq));
		CHECK_EQ(f.time_base_num(), 1);
		CHECK_EQ(f.time_base_den(), 90000);
		CHECK(f.is_key() && !f.is_eos() && !f.is_discontinuity());
		CHECK_EQ(f.header().color_range, FR_FRAME_RANGE_FULL);
		CHECK(f.latency() >= 0ns && f.latency() < 10s);
		CHECK(f.capture_time() <= std::chrono::steady_clock::now()); // the same clock
		CHECK(std::chrono::steady_clock::now() - f.capture_time() < 10s);
		// Plane geometry is the C library's: chroma of 4:2:0 is (w+1)/2 x (h+1)/2.
		fr::Plane y = f.plane(0);
		CHECK_EQ(y.rows, c.h);
		CHECK(y.stride >= y.row_bytes);
		CHECK(y.data == f.record() + f.header().plane[0].offset);
		if (c.f == fr::Format::i420) {
			CHECK_EQ(f.plane(1).rows, (c.h + 1) / 2);
			CHECK_EQ(f.plane(2).row_bytes, (c.w + 1) / 2);
		}
		// The pixels are read where they lie: inside the ring's mapping.
		const void *base;
		std::size_t size;
		fr_ring_mapping(cons.native_handle(), &base, &size);
		CHECK(y.data >= static_cast<const std::uint8_t *>(base) &&
		      y.data < static_cast<const std::uint8_t *>(base) + size);
		check_pixels(f);
		bool out_of_range = false;
		try {
			(void)f.plane(c.planes);
		} catch (const std::out_of_range &) {
			out_of_range = true;
		}
		CHECK(out_of_range);
		f.release();
		CHECK(f.released());
		seq++;
	}
	CHECK_EQ(cons.stats().records_read, seq);
	CHECK(!fr::parse_format("no-such-format"));
	CHECK(fr::parse_format("yuv420p") == fr::Format::i420);
}

// Moved-from handles are inert: nothing closed twice, no record released or aborted twice.
void move_semantics()
{
	std::string name = unique_name("mv");
	fr::Producer a(name, {1u << 20});
	fr::Producer b(std::move(a));
	CHECK(!a && b);
	CHECK(a.native_handle() == nullptr);
	a.close(); // a no-op on a moved-from handle, twice
	a.close();
	CHECK_THROWS(a.reserve(fr::Format::gray8, 8, 8, 0s), EBADF, "closed handle");
	std::error_code ec;
	fr::Reservation none = a.try_reserve(fr::Format::gray8, 8, 8, ec);
	CHECK(ec.value() == EBADF && !none);

	fr::Consumer c1(name);
	fr::Consumer c2;
	c2 = std::move(c1);
	CHECK(!c1 && c2);
	CHECK_EQ(c2.name(), name);
	CHECK_THROWS(c1.peek(0s), EBADF, "read ring");

	// A moved Reservation: the moved-from one neither commits nor aborts.
	fr::Reservation r1 = b.reserve(fr::Format::gray8, 16, 16, 1s);
	fill(r1);
	fr::Reservation r2(std::move(r1));
	CHECK(!r1.pending() && r2.pending());
	CHECK(r1.record() == nullptr && r1.width() == 0u && r1.plane_count() == 0u); // empty: zeros, no fault
	bool out_of_range = false;
	try {
		(void)r1.plane(0);
	} catch (const std::out_of_range &) {
		out_of_range = true;
	}
	CHECK(out_of_range);
	CHECK_THROWS(r1.commit(), EBADF, "commit");
	r1.abort(); // not pending: a no-op
	{
		fr::Reservation gone(std::move(r1)); // destroyed empty: nothing aborted
	}
	CHECK(r2.pending());
	r2.commit();
	CHECK_THROWS(r2.commit(), EBADF, "commit"); // committed once only

	// A moved Frame: the moved-from one does not release the record.
	fr::Frame f1 = c2.peek(1s);
	fr::Frame f2(std::move(f1));
	CHECK(!f1 && f2 && !f2.released());
	{
		fr::Frame gone(std::move(f1));
	}
	f1 = fr::Frame();
	CHECK(!f2.released());
	CHECK_EQ(c2.stats().records_read, 0u);
	check_pixels(f2);
	fr::Frame f3;
	f3 = std::move(f2);
	CHECK(!f2 && !f3.released());
	f3 = fr::Frame(); // move-assigning over a held frame releases it
	CHECK_EQ(c2.stats().records_read, 1u);

	// Move-assigning over an open producer closes its ring first (the name goes).
	std::string other = unique_name("mv2");
	fr::Producer p2(other);
	CHECK(shm_exists(other));
	p2 = std::move(b);
	CHECK(!shm_exists(other));
	CHECK(shm_exists(name) && p2.name() == name);
	p2.close();
	p2.close();
	CHECK(!shm_exists(name));
}

// Errors are framering::error (a std::system_error) with the C library's errno and text.
void errors_carry_errno()
{
	std::string missing = unique_name("missing");
	try {
		fr::Consumer c(missing);
		fail(__FILE__, __LINE__, "attaching to a missing ring did not throw");
	} catch (const std::system_error &e) { // catchable as the standard type
		CHECK(e.code() == std::errc::no_such_file_or_directory);
		CHECK_EQ(e.code().value(), ENOENT);
		CHECK(&e.code().category() == &fr::category());
		CHECK_EQ(e.code().message(), std::string(fr_ring_strerror(-ENOENT)));
		CHECK(std::strstr(e.what(), missing.c_str()));
		CHECK(std::strstr(e.what(), "no such ring"));
	}
	CHECK_THROWS(fr::Consumer(missing, 20ms), ETIMEDOUT, "timed out");
	// a code no errno has, INT_MIN included (negating it overflows: UBSan aborts there)
	CHECK_EQ(fr::make_error(INT_MIN).value(), INT_MAX);
	CHECK_EQ(fr::category().message(INT_MIN), std::string(fr_ring_strerror(INT_MIN)));
	CHECK(!fr::category().message(INT_MAX).empty());
	CHECK_THROWS(fr::Producer(unique_name("cap"), {1000}), EINVAL, "invalid argument");
	CHECK_THROWS(fr::Producer(std::string(FR_RING_NAME_MAX + 1, 'x')), ENAMETOOLONG, "too long");
	CHECK_THROWS(fr::Producer("a/b"), EINVAL, "'a/b'");
	CHECK_THROWS(fr::Producer(std::string("frt-nul\0x", 9)), EINVAL, "'frt-nul\\x00x': invalid");

	std::string name = unique_name("err");
	fr::Producer prod(name, {1u << 16});
	CHECK_THROWS(fr::Producer(name), EBUSY, "in use");
	CHECK_THROWS(prod.reserve(fr::Format::bgr24, 640, 480, 0s), EMSGSIZE, "too large");
	CHECK_THROWS(prod.reserve(static_cast<fr::Format>(0x1234), 8, 8, 0s), EINVAL, "invalid");
	CHECK_THROWS(prod.reserve(fr::Format::gray8, 0, 8, 0s), EINVAL, "reserve a frame in ring");
	CHECK_THROWS(prod.reserve(fr::Format::gray8, 8, FR_FRAME_MAX_DIM + 1, 0s), EINVAL, "invalid argument");
	fr::Consumer cons(name);
	CHECK_THROWS(cons.peek(10ms), ETIMEDOUT, "timed out");
	CHECK_THROWS(cons.peek(0s), EAGAIN, "would block");
	// The non-throwing path: the code in EC, an empty Frame.
	std::error_code ec;
	fr::Frame f = cons.try_peek(ec);
	CHECK(!f && ec == std::errc::resource_unavailable_try_again);
	fr::Reservation r = prod.reserve(fr::Format::gray8, 8, 8);
	CHECK_THROWS(prod.reserve(fr::Format::gray8, 8, 8, 0s), EALREADY, "outstanding");
	r.commit(ec);
	CHECK(!ec);
	prod.mark_eos();
	CHECK_THROWS(prod.reserve(fr::Format::gray8, 8, 8, 0s), EPIPE, "end of stream");
	CHECK(cons.try_peek(ec) && !ec);
	CHECK_THROWS(cons.peek(0s), ENODATA, "end of stream");
}

// The destructors give the record back: a held Frame blocks a lossless producer until it
// is destroyed; a Reservation not committed is aborted (the next reserve works, the
// consumer sees nothing of it, also when an exception leaves the code that fills it).
void destructor_frees_space()
{
	std::string name = unique_name("space");
	fr::Producer prod(name, {1u << 16});
	fr::Consumer cons(name);
	std::error_code ec;
	unsigned written = 0;
	for (;;) {
		fr::Reservation r = prod.try_reserve(fr::Format::gray8, 100, 100, ec);
		if (!r)
			break;
		fill(r);
		r.commit();
		written++;
	}
	CHECK(ec == std::errc::resource_unavailable_try_again); // full: the consumer gates it
	CHECK(written >= 2);
	{
		fr::Frame f = cons.peek(1s);
		CHECK_EQ(f.seq(), 0u);
		CHECK(!prod.try_reserve(fr::Format::gray8, 100, 100, ec)); // still held: still full
		CHECK(ec.value() == EAGAIN);
	} // ~Frame releases it: the producer may reuse its space
	{
		fr::Reservation r = prod.try_reserve(fr::Format::gray8, 100, 100, ec);
		CHECK(r && !ec);
		fill(r);
		// not committed: ~Reservation aborts it
	}
	// Aborted, not outstanding: another reserve works (else EALREADY) and takes its number's place.
	fr::Reservation again = prod.reserve(fr::Format::gray8, 100, 100, 0s);
	fill(again);
	again.commit();
	// An exception leaving the code that fills a frame leaves nothing published.
	try {
		fr::Reservation r = prod.reserve(fr::Format::gray8, 100, 100, 1s);
		throw std::runtime_error("conversion failed");
	} catch (const std::runtime_error &) {
	}
	std::vector<std::uint64_t> seqs;
	for (;;) {
		fr::Frame f = cons.try_peek(ec);
		if (!f)
			break;
		check_pixels(f);
		seqs.push_back(f.seq());
	}
	CHECK(ec.value() == EAGAIN);
	CHECK_EQ(seqs.size(), static_cast<std::size_t>(written)); // written - 1 old ones + again
	CHECK_EQ(cons.stats().records_read, static_cast<std::uint64_t>(written) + 1u);
	CHECK_EQ(prod.stats().records_written, static_cast<std::uint64_t>(written) + 1u);
}

// Asking for the next frame releases the one held (no EALREADY), as the Python Consumer does.
void next_peek_releases_previous()
{
	std::string name = unique_name("next");
	fr::Producer prod(name, {1u << 20});
	fr::Consumer cons(name);
	for (int i = 0; i < 3; i++) {
		fr::Reservation r = prod.reserve(fr::Format::gray8, 16, 16);
		fill(r);
		r.commit();
	}
	fr::Frame f = cons.peek(1s);
	fr::Frame g = cons.peek(1s);
	CHECK(f.released() && !g.released());
	CHECK_EQ(f.seq(), 0u); // its header copy stays
	CHECK_EQ(g.seq(), 1u);
	f = cons.peek(1s); // assigning the next over the held one
	CHECK(g.released() && !f.released());
	CHECK_EQ(f.seq(), 2u);
	g.release(); // a no-op: already released by the peek
	CHECK(!f.released());
	CHECK_EQ(cons.stats().records_read, 2u);
}

// With a consumer that keeps up, frames stay in the front of a large ring (the default hot lap);
// with hot_lap_off they go round all of it.
void hot_lap_keeps_frames_at_the_front()
{
	std::string name = unique_name("hot");
	fr::Producer prod(name, {64u << 20});
	fr::Consumer cons(name);
	auto spread = [&] {
		std::uintptr_t lo = UINTPTR_MAX, hi = 0;
		for (int i = 0; i < 30; i++) {
			fr::Reservation r = prod.reserve(fr::Format::bgr24, 1280, 720);
			fill(r);
			r.commit();
			fr::Frame f = cons.peek(1s);
			check_pixels(f);
			auto at = reinterpret_cast<std::uintptr_t>(f.record());
			lo = at < lo ? at : lo;
			hi = at > hi ? at : hi;
		}
		return hi - lo;
	};
	const std::size_t frame = 1280u * 720u * 3u;
	CHECK(spread() <= frame + 4096);
	prod.set_hot_lap(fr::Producer::hot_lap_off);
	CHECK(spread() >= 5 * frame);
	prod.set_hot_lap(0, 1ms);
}

// Range-for reads every frame to end of stream; a producer's failure is thrown with its reason.
void iteration_to_end_of_stream()
{
	std::string name = unique_name("iter");
	fr::Producer prod(name, {1u << 20});
	fr::Consumer cons(name);
	const unsigned count = 5;
	for (unsigned i = 0; i < count; i++) {
		fr::Reservation r = prod.reserve(fr::Format::bgr24, 40, 30);
		fill(r);
		r.commit();
	}
	prod.mark_eos();
	std::uint64_t expect = 0;
	for (fr::Frame &f : cons) {
		CHECK_EQ(f.seq(), expect);
		CHECK(!f.released());
		check_pixels(f);
		expect++;
	}
	CHECK_EQ(expect, static_cast<std::uint64_t>(count));
	CHECK_EQ(cons.stats().records_read, static_cast<std::uint64_t>(count));
	CHECK_THROWS(cons.peek(0s), ENODATA, "end of stream");
	unsigned again = 0;
	for (fr::Frame &f : cons.frames(0s)) // already at the end: no frame, no throw
		again += f ? 1u : 0u;
	CHECK_EQ(again, 0u);

	// frames(timeout) throws ETIMEDOUT when the producer goes quiet without ending.
	std::string quiet = unique_name("quiet");
	fr::Producer p2(quiet, {1u << 20});
	fr::Consumer c2(quiet);
	fr::Reservation r = p2.reserve(fr::Format::gray8, 8, 8);
	r.commit();
	unsigned seen = 0;
	try {
		for (fr::Frame &f : c2.frames(20ms))
			seen += f ? 1u : 0u;
		fail(__FILE__, __LINE__, "frames(20ms) ended without an error");
	} catch (const fr::error &e) {
		CHECK_EQ(e.errno_value(), ETIMEDOUT);
	}
	CHECK_EQ(seen, 1u);

	// A producer that failed: the frames before the mark, then EREMOTEIO with its line.
	r = p2.reserve(fr::Format::gray8, 8, 8);
	r.commit();
	p2.mark_eos_error(std::make_error_code(std::errc::io_error), "decoder broke at frame 2");
	seen = 0;
	try {
		for (fr::Frame &f : c2)
			seen += f ? 1u : 0u;
		fail(__FILE__, __LINE__, "iteration ended cleanly after a failed producer");
	} catch (const fr::error &e) {
		CHECK_EQ(e.errno_value(), EREMOTEIO);
		CHECK(std::strstr(e.what(), "decoder broke at frame 2"));
	}
	CHECK_EQ(seen, 1u);
	fr::EndReason why = c2.end_reason();
	CHECK(why.code == std::errc::io_error);
	CHECK_EQ(why.message, std::string("decoder broke at frame 2"));
}

// Frames and Reservations may outlive their Consumer/Producer: closing detaches at once (the
// name goes, the consumer slot is free) and the memory stays mapped until they are gone.
void outliving_the_ring_handle()
{
	std::string name = unique_name("life");
	fr::Producer prod(name, {1u << 20});
	fr::Reservation kept = prod.reserve(fr::Format::gray8, 32, 32);
	{
		fr::Consumer cons(name, 0s, fr::Mode::latest);
		fr::Reservation r = std::move(kept);
		fill(r);
		r.commit();
		kept = prod.reserve(fr::Format::gray8, 32, 32);
		fr::Frame f = cons.peek(1s);
		cons.close();
		CHECK(!cons);
		CHECK(f.released());
		check_pixels(f); // still mapped: the Frame keeps the mapping
		fr::Consumer next(name, fr::Mode::latest); // the slot went back at close()
		CHECK(next);
		// Released by hand, its consumer closed: still mapped while the Frame lives.
		fr::Reservation r2 = std::move(kept);
		fill(r2);
		r2.commit();
		kept = prod.reserve(fr::Format::gray8, 32, 32);
		fr::Frame g = next.peek(1s);
		g.release();
		next.close();
		CHECK(g.released());
		check_pixels(g); // the producer has not written there since: still its pixels
	}
	prod.close();
	CHECK(!shm_exists(name));
	CHECK(!kept.pending());            // aborted by the producer's detach
	fill(kept);                        // the memory is still there to write
	CHECK_THROWS(kept.commit(), EBADF, "commit");
}

// interrupt() from another thread ends a wait without a limit with ECANCELED.
// A thread peeking at CONS without a limit; the errno that ended the wait goes into GOT.
std::thread peek_in_thread(fr::Consumer &cons, std::atomic<int> &got)
{
	return std::thread([&cons, &got] {
		try {
			cons.peek(fr::wait_forever);
		} catch (const fr::error &e) {
			got = e.errno_value();
		}
	});
}

void interrupt_from_another_thread()
{
	std::string name = unique_name("intr");
	fr::Producer prod(name, {1u << 20});
	fr::Consumer cons(name);
	std::atomic<int> got{0};
	std::thread reader = peek_in_thread(cons, got);
	std::this_thread::sleep_for(50ms);
	cons.interrupt();
	reader.join();
	CHECK_EQ(got.load(), ECANCELED);
}

// A latest consumer: peek_latest() skips to the newest and says how many it passed over.
void latest_skips_to_newest()
{
	std::string name = unique_name("latest");
	fr::Producer prod(name, {1u << 20});
	fr::Consumer cons(name, 0s, fr::Mode::every);
	for (int i = 0; i < 4; i++) {
		fr::Reservation r = prod.reserve(fr::Format::gray8, 8, 8);
		fill(r);
		r.commit();
	}
	fr::Frame f = cons.peek_latest(1s);
	CHECK_EQ(f.seq(), 3u);
	CHECK_EQ(f.skipped(), 3u);
	check_pixels(f);
}

// The header of a Reservation that is no longer pending is not written through it: after an
// abort the next reservation lies at the same address, and set_pts() on the old one used to
// change the new frame's pts; on a moved-from one it dereferenced a null pointer.
void header_of_a_reservation_not_pending_is_not_written()
{
	std::string name = unique_name("notpend");
	fr::Producer prod(name, {1u << 20});
	fr::Consumer cons(name);
	fr::Reservation old = prod.reserve(fr::Format::gray8, 8, 8, 1s);
	old.abort();
	fr::Reservation cur = prod.reserve(fr::Format::gray8, 8, 8, 1s);
	CHECK(old.record() == cur.record()); // the same space, reused
	cur.set_pts(1);
	CHECK_THROWS(old.set_pts(5), EBADF, "not pending");
	CHECK_THROWS(old.set_time_base(1, 2), EBADF, "not pending");
	CHECK_THROWS(old.set_flags(FR_FRAME_FLAG_EOS), EBADF, "not pending");
	CHECK_THROWS(old.header().pts = 5, EBADF, "not pending");
	fr::Reservation moved(std::move(cur));
	CHECK_THROWS(cur.set_pts(5), EBADF, "not pending");
	CHECK_THROWS(cur.header(), EBADF, "not pending");
	CHECK_EQ(old.width(), 8u); // reading stays possible
	moved.commit();
	CHECK_THROWS(moved.set_pts(5), EBADF, "not pending");
	fr::Frame f = cons.peek(1s);
	CHECK(f.pts() && *f.pts() == 1);
	CHECK(!f.is_eos());
	CHECK_EQ(f.time_base_den(), 1000000000);
}

// skip_to_latest() while a frame is held (the loop that catches up: peek, fall behind, skip)
// releases that frame, as asking for the next one does, instead of failing with EALREADY.
void skip_to_latest_with_a_frame_held()
{
	std::string name = unique_name("skip");
	fr::Producer prod(name, {1u << 20});
	fr::Consumer cons(name, 0s, fr::Mode::every);
	auto write = [&]() {
		fr::Reservation r = prod.reserve(fr::Format::gray8, 8, 8);
		fill(r);
		r.commit();
	};
	for (int i = 0; i < 5; i++)
		write();
	fr::Frame f = cons.peek(1s);
	CHECK_EQ(f.seq(), 0u);
	CHECK_EQ(cons.skip_to_latest(), static_cast<std::int64_t>(3)); // 1, 2 and 3 go; 4 stays
	CHECK(f.released());
	f.release(); // released already: nothing to give back twice
	fr::Frame g = cons.peek(1s);
	CHECK_EQ(g.seq(), 4u);
	check_pixels(g);
	CHECK_EQ(cons.stats().records_read, 1u); // frame 0, given back by the skip
	write();
	for (fr::Frame &h : cons) { // the same from inside the iteration, which holds its frame
		CHECK_EQ(h.seq(), 5u);
		write();
		write();
		CHECK_EQ(cons.skip_to_latest(), static_cast<std::int64_t>(1));
		break;
	}
	CHECK_EQ(cons.peek(1s).seq(), 7u);
}

// A producer that replaces its ring (a larger one): the consumer reads the old one to its
// end, then follows to the new one by itself; frame numbers go on.
void replaced_ring_is_followed()
{
	std::string name = unique_name("repl");
	fr::Producer prod(name, {1u << 16});
	fr::Consumer cons(name);
	auto write = [&](std::uint32_t w, std::uint32_t h) {
		fr::Reservation r = prod.reserve(fr::Format::gray8, w, h, 1s);
		fill(r);
		r.commit();
	};
	write(64, 64);
	write(64, 64);
	fr::Reservation pending = prod.reserve(fr::Format::gray8, 8, 8, 1s);
	CHECK_THROWS(prod.replace({1u << 20}), EALREADY, "replace ring");
	pending.abort();
	void *old_handle = prod.native_handle();
	prod.replace({1u << 20});
	CHECK(prod.native_handle() != old_handle);
	CHECK_EQ(prod.stats().capacity, static_cast<std::uint64_t>(1u << 20));
	write(320, 240); // too large for the old ring's 32 KiB records
	write(320, 240);
	prod.mark_eos();
	std::vector<std::uint64_t> seqs;
	for (fr::Frame &f : cons) {
		check_pixels(f);
		seqs.push_back(f.seq());
	}
	CHECK_EQ(seqs.size(), static_cast<std::size_t>(4));
	for (std::size_t i = 0; i < seqs.size(); i++)
		CHECK_EQ(seqs[i], static_cast<std::uint64_t>(i)); // the aborted frame's number is reused
	CHECK_EQ(cons.replacements(), static_cast<std::uint64_t>(1));
}

// A record that is no frame: peek() throws ENOMSG and goes on after it; iteration skips it
// and counts it. The stream description (meta) goes from producer to consumer.
void invalid_records_and_meta()
{
	std::string name = unique_name("junk");
	fr::Producer prod(name, {1u << 20});
	fr::Consumer cons(name);
	const char desc[] = "gray8 16x16";
	prod.set_meta(desc, sizeof desc);
	std::vector<std::uint8_t> meta = cons.meta();
	CHECK_EQ(meta.size(), sizeof desc);
	CHECK(std::memcmp(meta.data(), desc, sizeof desc) == 0);
	auto frame = [&] {
		fr::Reservation r = prod.reserve(fr::Format::gray8, 16, 16);
		fill(r);
		r.commit();
	};
	auto junk = [&] { CHECK_EQ(fr_ring_write(prod.native_handle(), "not a frame", 11, 0), 0); };
	frame();
	junk();
	frame();
	CHECK_EQ(cons.peek(0s).seq(), 0u);
	CHECK_THROWS(cons.peek(0s), ENOMSG, "not a valid frame");
	CHECK_EQ(cons.peek(0s).seq(), 1u);
	junk();
	frame();
	junk();
	prod.mark_eos();
	unsigned n = 0;
	for (fr::Frame &f : cons) {
		CHECK_EQ(f.seq(), 2u);
		n++;
	}
	CHECK_EQ(n, 1u);
	CHECK_EQ(cons.invalid_frames(), static_cast<std::uint64_t>(2));
}

// A negative timeout does not wait, as std::chrono's waits (sleep_for, wait_for) do not: the
// time left until a deadline that has passed, `deadline - steady_clock::now()`, must not turn
// into a wait without a limit. wait_forever still waits (interrupt_from_another_thread).
void negative_timeout_does_not_wait()
{
	std::string name = unique_name("neg");
	fr::Producer prod(name, {1u << 16});
	fr::Consumer cons(name);
	const auto deadline = std::chrono::steady_clock::now();
	std::error_code ec;
	cons.try_peek(ec, deadline - std::chrono::steady_clock::now() - 1ms);
	CHECK_EQ(ec.value(), EAGAIN); // as no_wait's
	CHECK_THROWS(cons.peek(-1ns), EAGAIN, "ring");
	CHECK_THROWS(prod.wait_consumers(2, -1ms), EAGAIN, "ring");
	for (;;) { // fill the ring; then a reserve with a negative timeout does not wait for room
		fr::Reservation r = prod.try_reserve(fr::Format::gray8, 64, 64, ec);
		if (ec)
			break;
		fill(r);
		r.commit();
	}
	CHECK_EQ(ec.value(), EAGAIN);
	prod.try_reserve(fr::Format::gray8, 64, 64, ec, -1s);
	CHECK_EQ(ec.value(), EAGAIN);
	CHECK_THROWS(fr::Consumer(name + "-none", -1s), ENOENT, "attach to");
	CHECK_EQ(cons.peek(-1s).seq(), 0u); // a frame that is there is still taken
}

// interrupt() from another thread while the consumer follows a replaced ring. Following swaps
// the consumer's handle, which interrupt() must not read at the same time (a data race on a
// shared_ptr, and the old ring closed under fr_ring_interrupt(); seen by the TSAN build,
// FRAMERING_SANITIZE=thread). And it must wake the wait for the new ring too: when the producer
// replaced its ring and then closed, no ring comes under the name, and only interrupt() ends
// the wait, with ECANCELED.
void interrupt_while_following_a_replaced_ring()
{
	std::string name = unique_name("intrf");
	{
		fr::Producer prod(name, {1u << 16});
		fr::Consumer cons(name);
		std::atomic<bool> done{false};
		int frames = 0, last = 0;
		std::thread reader([&] {
			while (frames < 20) {
				try {
					cons.peek(fr::wait_forever);
					frames++;
				} catch (const fr::error &e) {
					if (e.errno_value() != ECANCELED) { // ECANCELED: the interrupter's
						last = e.errno_value();
						return;
					}
				}
			}
		});
		std::thread interrupter([&] {
			while (!done)
				cons.interrupt();
		});
		for (int i = 0; i < 20; i++) {
			if (i > 0) // the consumer followed: a ring replaced before it came would be missed
				prod.wait_consumers(1, 10s);
			fr::Reservation r = prod.reserve(fr::Format::gray8, 16, 16, 10s);
			fill(r);
			r.commit();
			prod.replace({1u << 16});
		}
		reader.join();
		done = true;
		interrupter.join();
		CHECK_EQ(last, 0);
		CHECK_EQ(frames, 20);
		CHECK_EQ(cons.replacements(), static_cast<std::uint64_t>(19));
	}
	fr::Producer prod(name, {1u << 16});
	fr::Consumer cons(name);
	prod.replace({1u << 16});
	prod.close(); // the name is gone: following waits for a ring that does not come
	std::atomic<int> got{0};
	std::thread reader = peek_in_thread(cons, got);
	std::this_thread::sleep_for(50ms); // the reader is waiting for the new ring by now
	while (got.load() == 0) {
		cons.interrupt();
		std::this_thread::sleep_for(1ms);
	}
	reader.join();
	CHECK_EQ(got.load(), ECANCELED);
}

// interrupt() landing after a peek said ESTALE but before the consumer turns to following the
// replacement (the test seam above puts it there): it reached the old ring, whose flag no wait
// looks at again, so the call followed and then waited on in the new ring as if never
// interrupted. It must end that call with ECANCELED, once: the next call reads on.
void interrupt_between_stale_and_following()
{
	std::string name = unique_name("intrs");
	fr::Producer prod(name, {1u << 16});
	fr::Consumer cons(name);
	prod.replace({1u << 16}); // the new ring is in place before the old one says ESTALE
	interrupt_after_stale = true;
	std::error_code ec;
	fr::Frame none = cons.try_peek(ec, 2s); // no frame comes: only the interrupt can end it early
	CHECK(!interrupt_after_stale);          // the seam ran
	CHECK_EQ(ec.value(), ECANCELED);
	fr::Reservation r = prod.reserve(fr::Format::gray8, 16, 16, 10s);
	fill(r);
	r.commit();
	fr::Frame f = cons.peek(10s);
	CHECK_EQ(f.seq(), 0u);
	check_pixels(f);
	CHECK_EQ(cons.replacements(), static_cast<std::uint64_t>(1));
}

struct Case {
	const char *name;
	void (*fn)();
};
const Case all_cases[] = {
	{"round_trip", round_trip},
	{"move_semantics", move_semantics},
	{"errors_carry_errno", errors_carry_errno},
	{"destructor_frees_space", destructor_frees_space},
	{"next_peek_releases_previous", next_peek_releases_previous},
	{"iteration_to_end_of_stream", iteration_to_end_of_stream},
	{"outliving_the_ring_handle", outliving_the_ring_handle},
	{"interrupt_from_another_thread", interrupt_from_another_thread},
	{"latest_skips_to_newest", latest_skips_to_newest},
	{"skip_to_latest_with_a_frame_held", skip_to_latest_with_a_frame_held},
	{"header_of_a_reservation_not_pending_is_not_written", header_of_a_reservation_not_pending_is_not_written},
	{"replaced_ring_is_followed", replaced_ring_is_followed},
	{"invalid_records_and_meta", invalid_records_and_meta},
	{"hot_lap_keeps_frames_at_the_front", hot_lap_keeps_frames_at_the_front},
	{"negative_timeout_does_not_wait", negative_timeout_does_not_wait},
	{"interrupt_while_following_a_replaced_ring", interrupt_while_following_a_replaced_ring},
	{"interrupt_between_stale_and_following", interrupt_between_stale_and_following},
};

bool run(const Case &c)
{
	int before = failures;
	alarm(60); // a hang is a failure
	try {
		c.fn();
	} catch (const CheckFailed &) {
	} catch (const std::exception &e) {
		std::fprintf(stderr, "%s: unexpected exception: %s\n", c.name, e.what());
		++failures;
	}
	alarm(0);
	bool ok = failures == before;
	std::printf("%s %s\n", ok ? "ok  " : "FAIL", c.name);
	return ok;
}

} // namespace

int main(int argc, char **argv)
{
	std::signal(SIGALRM, [](int) {
		static const char msg[] = "test_framering: hung for 60 s\n";
		ssize_t w = write(2, msg, sizeof msg - 1);
		(void)w;
		_exit(1);
	});
	int bad = 0;
	if (argc == 1) {
		for (const Case &c : all_cases)
			bad += !run(c);
	} else {
		for (int i = 1; i < argc; i++) {
			const Case *found = nullptr;
			for (const Case &c : all_cases)
				if (std::strcmp(c.name, argv[i]) == 0)
					found = &c;
			if (!found) {
				std::fprintf(stderr, "test_framering: no case '%s'\n", argv[i]);
				return 2;
			}
			bad += !run(*found);
		}
	}
	return bad ? 1 : 0;
}
