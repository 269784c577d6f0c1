// framering.hpp - a C++17 header-only wrapper over libframering-ring (ring.h, frame.h).
//
//   #include <framering/framering.hpp>
//   using namespace std::chrono_literals;
//
//   framering::Consumer cons("cam0", 5s);              // wait up to 5 s for the producer
//   for (framering::Frame &f : cons) {                 // until end of stream
//       framering::Plane p = f.plane(0);               // in shared memory: no copy
//       use(p.row(0), p.row_bytes, p.rows, p.stride);
//   }                                                  // each frame released as the next comes
//
//   framering::Producer prod("edges", {/*capacity=*/8u << 20});
//   framering::Reservation out = prod.reserve(framering::Format::gray8, 640, 480);
//   fill(out.plane(0));                                // write the pixels in place
//   out.commit();                                      // not committed: aborted by ~Reservation
//
// Errors: every failure of the C library (a negative errno value, see ring.h) is thrown as
// framering::error, a std::system_error whose code() holds the errno in framering::category():
// its message() is fr_ring_strerror()'s text, and it compares equal to the std::errc of that
// errno (e.code() == std::errc::no_such_file_or_directory for a missing ring). The calls made
// per frame also come as try_ versions that take a std::error_code& and never throw.
//
// Handles: Producer, Consumer, Frame and Reservation are move-only. A moved-from or closed
// object is inert: its destructor does nothing, close() is a no-op, and every other call
// fails with EBADF (what() says "closed handle"). So a ring is closed exactly once.
//
// Lifetime (as in the Python binding): the fr_ring_t and its mapping belong to a small shared
// owner. close() (or the destructor) of a Producer/Consumer ends its side at once
// (fr_ring_detach: end of stream marked / consumer slot freed, name removed), but the memory
// is unmapped only when the last Frame or Reservation taken from it is gone. A Frame or
// Reservation may therefore outlive its Consumer/Producer, and be released, committed or
// aborted: as long as the object lives its pointers stay readable (a Reservation's
// writable), never a fault; what they show after the release is up to the producer.
//
// One frame at a time: a consumer holds at most one peeked record. Asking for the next
// frame releases the one held before (so `f = cons.peek();` in a loop just works); the Frame
// object that held it is then released() and its planes show whatever the producer writes
// there later. Keep pixels past that by copying them.
//
// Threads: like fr_ring_t, a Producer or Consumer and the Frames/Reservations taken from it are
// used by one thread at a time. The one exception is interrupt(), which another thread (or a
// signal handler, via native_handle() and fr_ring_interrupt()) may call while a call waits.
//
// Timeouts are std::chrono durations (any integral one converts to nanoseconds): zero
// (no_wait) or a negative one never waits, as std::chrono's waits (sleep_for, wait_for): the
// time left until a deadline that has passed is no wait; wait_forever waits without a limit.
#ifndef FRAMERING_FRAMERING_HPP
#define FRAMERING_FRAMERING_HPP

#if __cplusplus < 201703L
#error "framering.hpp needs C++17 (-std=c++17)"
#endif

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "frame.h"
#include "ring.h"

// A test seam (tests/cpp): a statement Consumer runs where a peek has just said ESTALE, before
// it follows the ring that replaced its own. Nothing in any other build.
#ifndef FRAMERING_TEST_SEAM_AFTER_STALE
#define FRAMERING_TEST_SEAM_AFTER_STALE() ((void)0)
#endif

namespace framering {

// ---------------------------------------------------------------- errors

// The library's error codes as std::error_code values: positive errno numbers with
// fr_ring_strerror()'s text, equivalent to std::generic_category()'s (std::errc) conditions.
class ErrorCategory final : public std::error_category {
public:
	const char *name() const noexcept override { return "framering"; }
	// (INT_MIN has no negation: fr_ring_strerror calls it unknown, as it does any code it lacks)
	std::string message(int ev) const override { return ::fr_ring_strerror(ev == INT_MIN ? ev : -ev); }
	std::error_condition default_error_condition(int ev) const noexcept override
	{
		return std::error_condition(ev, std::generic_category());
	}
};

inline const std::error_category &category() noexcept
{
	static const ErrorCategory instance;
	return instance;
}

// A negative errno value from the C library as an error code (0 stays "no error").
inline std::error_code make_error(int negative_errno) noexcept
{
	if (negative_errno == INT_MIN) // no errno, and no int is its negation
		return std::error_code(INT_MAX, category());
	return std::error_code(negative_errno < 0 ? -negative_errno : negative_errno, category());
}

// What every failure throws: code() is the errno (in category()), what() is
// "<what was done>: <fr_ring_strerror text>".
class error : public std::system_error {
public:
	error(std::error_code ec, const std::string &what) : std::system_error(ec, what) {}
	error(int negative_errno, const std::string &what)
		: std::system_error(make_error(negative_errno), what) {}
	// The errno value (positive), e.g. ENOENT for a ring that does not exist.
	int errno_value() const noexcept { return code().value(); }
};

// ---------------------------------------------------------------- small types

using Timeout = std::chrono::nanoseconds;
inline constexpr Timeout wait_forever = Timeout::max(); // no other duration waits without a limit
inline constexpr Timeout no_wait{0};

enum class Format : std::uint32_t {
	bgr24 = FR_FRAME_FMT_BGR24,
	rgb24 = FR_FRAME_FMT_RGB24,
	gray8 = FR_FRAME_FMT_GRAY8,
	i420 = FR_FRAME_FMT_I420,
	nv12 = FR_FRAME_FMT_NV12,
};

// "bgr24", "rgb24", "gray8", "i420", "nv12"; nullptr for a code the library does not know.
inline const char *format_name_of(Format f) noexcept { return ::fr_frame_format_name(static_cast<std::uint32_t>(f)); }

// The format named NAME ("bgr24", "gray", "yuv420p", ... as fr_frame_format_from_name());
// std::nullopt if the library does not know it.
inline std::optional<Format> parse_format(std::string_view name)
{
	std::uint32_t code = ::fr_frame_format_from_name(std::string(name).c_str());
	if (!code || name.find('\0') != std::string_view::npos)
		return std::nullopt;
	return static_cast<Format>(code);
}

enum class Mode { every = FR_RING_CONSUMER_EVERY, latest = FR_RING_CONSUMER_LATEST };
enum class FullPolicy { block = FR_RING_FULL_BLOCK, drop = FR_RING_FULL_DROP };

// One image plane in memory: ROWS rows of ROW_BYTES bytes, STRIDE bytes apart.
// Byte is const std::uint8_t for a frame read (Plane), std::uint8_t for one being written.
template <class Byte>
struct BasicPlane {
	Byte *data = nullptr;
	std::size_t stride = 0;
	std::size_t rows = 0;
	std::size_t row_bytes = 0;

	Byte *row(std::size_t y) const noexcept { return data + y * stride; }
	bool empty() const noexcept { return data == nullptr || rows == 0; }
};
using Plane = BasicPlane<const std::uint8_t>;
using MutablePlane = BasicPlane<std::uint8_t>;

struct ProducerOptions {
	std::uint64_t capacity = 0;          // data area in bytes, a power of two; 0: 64 MiB
	unsigned max_consumers = 0;          // 1..12; 0: 8
	FullPolicy on_full = FullPolicy::block;
	unsigned permissions = 0;            // mode bits of the segment; 0: 0600
};

// How a stream ended on an error (Consumer::end_reason()).
struct EndReason {
	std::error_code code;                // empty: ended cleanly, or not ended
	std::string message;                 // the producer's one line (its bytes, unescaped)
};

namespace detail {

// Owns one fr_ring_t. Producer/Consumer hold it, and so does every Frame/Reservation taken from
// it, so the mapping lives while any of them does. GEN names the record outstanding
// (peeked or reserved) while HELD: a Frame/Reservation of another generation no longer owns it.
struct Owner {
	::fr_ring_t *r = nullptr;
	std::uint64_t gen = 0;
	bool held = false;
	bool detached = false;

	explicit Owner(::fr_ring_t *ptr) noexcept : r(ptr) {}
	Owner(const Owner &) = delete;
	Owner &operator=(const Owner &) = delete;
	~Owner() { ::fr_ring_close(&r); }

	// fr_ring_detach() once; the record held goes with it.
	int detach() noexcept
	{
		if (detached)
			return 0;
		detached = true;
		held = false;
		return ::fr_ring_detach(r);
	}
	bool owns(std::uint64_t g) const noexcept { return held && gen == g && !detached; }
};

// What interrupt() wakes, shared by a Producer/Consumer with the thread that interrupts it: the
// ring a call may be waiting on, swapped under the lock when a replaced ring is followed (so
// interrupt() never reads a handle being replaced, nor one being closed). While the consumer
// attaches to the ring that replaced its own there is none: an interrupt() is then kept
// (pending) for that wait to take, or handed to the new ring once it is attached.
//
// The C library keeps an interrupt in a flag of the fr_ring_t until a wait takes it. One that
// reaches the old ring after the peek there looked for the last time (it lands between the
// peek's ESTALE and the consumer turning to following) would die with that ring, and the call
// would wait on in the new one. So the Waker remembers an interrupt sent to R that no call has
// seen end with ECANCELED (sent), and following keeps it pending instead.
struct Waker {
	std::mutex lock;
	::fr_ring_t *r = nullptr;
	bool pending = false;
	bool sent = false;

	explicit Waker(::fr_ring_t *ring) noexcept : r(ring) {}
	void interrupt() noexcept
	{
		std::lock_guard<std::mutex> hold(lock);
		if (r) {
			::fr_ring_interrupt(r);
			sent = true;
		} else {
			pending = true;
		}
	}
	// From now on interrupt() wakes RING (nullptr: keep interrupts pending); one kept pending
	// goes to RING, whose next wait then fails with ECANCELED.
	void target(::fr_ring_t *ring) noexcept
	{
		std::lock_guard<std::mutex> hold(lock);
		r = ring;
		sent = false;
		if (r && pending) {
			pending = false;
			::fr_ring_interrupt(r);
			sent = true;
		}
	}
	// The ring is being left for the one that replaced it: keep interrupts pending from now
	// on, and one sent to the ring being left that no wait took as well.
	void leave() noexcept
	{
		std::lock_guard<std::mutex> hold(lock);
		r = nullptr;
		pending = pending || sent;
		sent = false;
	}
	// A call ended with ECANCELED: the interrupt sent was taken. (One sent just after the
	// wait took the flag is forgotten here but stays in the flag, for the next wait on R.)
	void taken() noexcept
	{
		std::lock_guard<std::mutex> hold(lock);
		sent = false;
	}
	// Whether interrupt() was called while there was no ring to wake (and forget it).
	bool take_pending() noexcept
	{
		std::lock_guard<std::mutex> hold(lock);
		bool was = pending;
		pending = false;
		return was;
	}
};

// TEXT for a message: bytes that are not printable ASCII (and '\\') as \\xNN, so that a
// name or a producer's line cannot play tricks on a terminal.
inline std::string escaped(std::string_view text)
{
	static const char hex[] = "0123456789abcdef";
	std::string s;
	for (char ch : text) {
		auto c = static_cast<unsigned char>(ch);
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			s += static_cast<char>(c);
		} else {
			s += "\\x";
			s += hex[c >> 4];
			s += hex[c & 15];
		}
	}
	return s;
}

// "WHAT ring 'NAME'" for a message.
inline std::string quoted(const char *what, const std::string &name)
{
	return std::string(what) + " ring '" + escaped(name) + "'";
}

// The C library's nanoseconds, where a negative value waits forever: only wait_forever is that.
inline std::int64_t to_ns(Timeout t) noexcept
{
	return t == wait_forever ? FR_RING_WAIT_FOREVER : t.count() < 0 ? FR_RING_NO_WAIT : t.count();
}

inline const ::fr_frame_header &no_header() noexcept
{
	static const ::fr_frame_header none{};
	return none;
}

template <class Byte>
BasicPlane<Byte> plane_at(Byte *record, const ::fr_frame_header &h, unsigned i)
{
	if (i >= h.plane_count || i >= FR_FRAME_MAX_PLANES)
		throw std::out_of_range("framering: plane " + std::to_string(i) + " of a frame with " +
					std::to_string(h.plane_count) + " planes");
	BasicPlane<Byte> p;
	p.data = record + h.plane[i].offset;
	p.stride = h.plane[i].stride;
	p.rows = ::fr_frame_plane_rows(h.fourcc, h.height, i);
	p.row_bytes = ::fr_frame_plane_row_bytes(h.fourcc, h.width, i);
	return p;
}

// The header fields both Frame and Reservation show (Derived::header() const gives the header;
// all zero for an empty object).
template <class Derived>
class HeaderFields {
public:
	std::uint64_t seq() const noexcept { return h().seq; }
	std::uint32_t width() const noexcept { return h().width; }
	std::uint32_t height() const noexcept { return h().height; }
	Format format() const noexcept { return static_cast<Format>(h().fourcc); }
	std::uint32_t fourcc() const noexcept { return h().fourcc; }
	unsigned plane_count() const noexcept { return h().plane_count; }
	std::uint32_t flags() const noexcept { return h().flags; }
	bool is_key() const noexcept { return h().flags & FR_FRAME_FLAG_KEY; }
	bool is_discontinuity() const noexcept { return h().flags & FR_FRAME_FLAG_DISCONTINUITY; }
	bool is_eos() const noexcept { return h().flags & FR_FRAME_FLAG_EOS; }
	// Presentation time in time-base units; nullopt if unknown.
	std::optional<std::int64_t> pts() const noexcept
	{
		if (h().pts == INT64_MIN)
			return std::nullopt;
		return h().pts;
	}
	std::int32_t time_base_num() const noexcept { return h().time_base_num; }
	std::int32_t time_base_den() const noexcept { return h().time_base_den; }
	// CLOCK_MONOTONIC nanoseconds when it was captured/decoded (fr_frame_now_ns()'s clock).
	std::uint64_t capture_ns() const noexcept { return h().capture_ns; }
	// The same as a time point of std::chrono::steady_clock, which is CLOCK_MONOTONIC on Linux
	// (libstdc++ and libc++).
	std::chrono::steady_clock::time_point capture_time() const noexcept
	{
		return std::chrono::steady_clock::time_point(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
			Timeout(static_cast<std::int64_t>(h().capture_ns))));
	}
	// From the capture to now.
	Timeout latency() const noexcept
	{
		return Timeout(static_cast<std::int64_t>(::fr_frame_now_ns() - h().capture_ns));
	}

private:
	const ::fr_frame_header &h() const noexcept { return static_cast<const Derived *>(this)->header(); }
};

} // namespace detail

// ---------------------------------------------------------------- Frame

class Consumer;

// One frame peeked from a consumer: a checked copy of its header, its pixels in place.
// Released (the producer may reuse its space) by release(), the destructor, or the
// consumer's next peek, whichever comes first.
class Frame : public detail::HeaderFields<Frame> {
public:
	Frame() noexcept = default;
	Frame(Frame &&o) noexcept
		: owner_(std::move(o.owner_)), gen_(o.gen_), hdr_(o.hdr_), rec_(o.rec_), skipped_(o.skipped_)
	{
		o.rec_ = nullptr;
	}
	Frame &operator=(Frame &&o) noexcept
	{
		if (this != &o) {
			std::error_code ignored;
			release(ignored);
			owner_ = std::move(o.owner_);
			gen_ = o.gen_;
			hdr_ = o.hdr_;
			rec_ = o.rec_;
			skipped_ = o.skipped_;
			o.rec_ = nullptr;
		}
		return *this;
	}
	Frame(const Frame &) = delete;
	Frame &operator=(const Frame &) = delete;
	~Frame()
	{
		std::error_code ignored;
		release(ignored);
	}

	// Whether this object holds a frame (it may be released() already).
	explicit operator bool() const noexcept { return rec_ != nullptr; }
	// Whether the record went back to the ring (or there is none): its pixels stay readable
	// (the mapping lives as long as this object) but may show newer data. Header fields stay.
	bool released() const noexcept { return !owner_ || !owner_->owns(gen_); }

	// Give the record back to the producer now (idempotent).
	void release()
	{
		std::error_code ec;
		release(ec);
		if (ec)
			throw error(ec, "release a frame");
	}
	void release(std::error_code &ec) noexcept
	{
		ec.clear();
		if (owner_ && owner_->owns(gen_)) {
			owner_->held = false;
			if (int rc = ::fr_ring_release(owner_->r); rc < 0)
				ec = make_error(rc);
		}
		// The mapping stays (owner_ kept) until this Frame is destroyed or assigned over,
		// so that its pointers stay readable: the last Frame of a closed consumer unmaps.
	}

	// The checked copy of the header (fr_frame_header_validate()); valid after release too.
	const ::fr_frame_header &header() const noexcept { return hdr_; }
	// The record (its header first) in shared memory; nullptr for an empty Frame.
	const std::uint8_t *record() const noexcept { return rec_; }
	// Plane I (0 .. plane_count()-1) in shared memory; std::out_of_range past the last.
	Plane plane(unsigned i = 0) const { return detail::plane_at(rec_, hdr_, i); }
	// Records discarded just before this one (peek_latest(), a latest consumer).
	std::uint64_t skipped() const noexcept { return skipped_; }

private:
	friend class Consumer;
	Frame(std::shared_ptr<detail::Owner> owner, const ::fr_frame_header &h, const std::uint8_t *rec,
	      std::uint64_t skipped) noexcept
		: owner_(std::move(owner)), hdr_(h), rec_(rec), skipped_(skipped)
	{
		gen_ = owner_->gen;
	}

	std::shared_ptr<detail::Owner> owner_;
	std::uint64_t gen_ = 0;
	::fr_frame_header hdr_{};
	const std::uint8_t *rec_ = nullptr;
	std::uint64_t skipped_ = 0;
};

// ---------------------------------------------------------------- Reservation

class Producer;

// A frame record reserved in a producer's ring, header initialised: write the pixels through
// plane(), set pts/time base/flags in header(), then commit(). One not committed when it is
// destroyed is aborted: the consumers never see it. (Committing in the destructor would
// publish a half-written frame when an exception leaves the code that fills it, and a
// commit that fails, e.g. after end of stream, could not be reported from a destructor.)
class Reservation : public detail::HeaderFields<Reservation> {
public:
	Reservation() noexcept = default;
	Reservation(Reservation &&o) noexcept : owner_(std::move(o.owner_)), gen_(o.gen_), hdr_(o.hdr_)
	{
		o.hdr_ = nullptr;
	}
	Reservation &operator=(Reservation &&o) noexcept
	{
		if (this != &o) {
			std::error_code ignored;
			abort(ignored);
			owner_ = std::move(o.owner_);
			gen_ = o.gen_;
			hdr_ = o.hdr_;
			o.hdr_ = nullptr;
		}
		return *this;
	}
	Reservation(const Reservation &) = delete;
	Reservation &operator=(const Reservation &) = delete;
	~Reservation()
	{
		std::error_code ignored;
		abort(ignored);
	}

	// Whether it is still reserved: neither committed nor aborted (nor its producer closed).
	bool pending() const noexcept { return hdr_ && owner_ && owner_->owns(gen_); }
	explicit operator bool() const noexcept { return pending(); }

	// Publish it. Errors: EPIPE (end of stream was marked meanwhile: dropped), EBADF (not
	// pending: committed or aborted already, its producer closed, or an empty Reservation).
	// Committed or not, its memory stays mapped while this object lives, but once it is not
	// pending it is no longer this object's to write.
	void commit()
	{
		std::error_code ec;
		commit(ec);
		if (ec)
			throw error(ec, ec.value() == EBADF ? "commit a frame (not pending)" : "commit a frame");
	}
	void commit(std::error_code &ec) noexcept
	{
		ec.clear();
		if (!pending()) {
			ec = make_error(-EBADF);
			return;
		}
		owner_->held = false;
		if (int rc = ::fr_frame_commit(owner_->r, hdr_); rc < 0)
			ec = make_error(rc);
	}
	// Give it back: the consumers never see it. A no-op when not pending.
	void abort()
	{
		std::error_code ec;
		abort(ec);
		if (ec)
			throw error(ec, "abort a frame");
	}
	void abort(std::error_code &ec) noexcept
	{
		ec.clear();
		if (pending()) {
			owner_->held = false;
			if (int rc = ::fr_ring_abort(owner_->r); rc < 0)
				ec = make_error(rc);
		}
	}

	// The header in shared memory: the producer may set pts, time_base_*, flags, capture_ns
	// and the colorimetry fields before commit(). The writing calls (header(), set_*) throw
	// EBADF when it is not pending (committed, aborted, its producer closed, empty or moved
	// from): the record is no longer this object's, and after an abort the next reservation
	// lies there. The reading ones give zeros (and plane() std::out_of_range) on an empty one.
	::fr_frame_header &header() { return *writable(); }
	const ::fr_frame_header &header() const noexcept { return hdr_ ? *hdr_ : detail::no_header(); }
	// The record (its header first) in shared memory; nullptr for an empty Reservation.
	// Through a const Reservation it is read-only, as are its planes: a const reference
	// (handed to code that only looks at the frame) must not let that code write it.
	std::uint8_t *record() noexcept { return reinterpret_cast<std::uint8_t *>(hdr_); }
	const std::uint8_t *record() const noexcept { return reinterpret_cast<const std::uint8_t *>(hdr_); }
	// Plane I (0 .. plane_count()-1), to write in place; std::out_of_range past the last.
	MutablePlane plane(unsigned i = 0) { return detail::plane_at(record(), std::as_const(*this).header(), i); }
	Plane plane(unsigned i = 0) const { return detail::plane_at(record(), header(), i); }

	void set_pts(std::optional<std::int64_t> pts) { writable()->pts = pts ? *pts : INT64_MIN; }
	void set_time_base(std::int32_t num, std::int32_t den)
	{
		::fr_frame_header *h = writable();
		h->time_base_num = num;
		h->time_base_den = den;
	}
	void set_flags(std::uint32_t flags) { writable()->flags = flags; }

private:
	friend class Producer;
	::fr_frame_header *writable() const
	{
		if (!pending())
			throw error(-EBADF, "write the header of a frame (not pending)");
		return hdr_;
	}
	Reservation(std::shared_ptr<detail::Owner> owner, ::fr_frame_header *h) noexcept
		: owner_(std::move(owner)), hdr_(h)
	{
		gen_ = owner_->gen;
	}

	std::shared_ptr<detail::Owner> owner_;
	std::uint64_t gen_ = 0;
	::fr_frame_header *hdr_ = nullptr;
};

// ---------------------------------------------------------------- both sides

namespace detail {

class Side {
public:
	// Whether it is open (not moved from, not closed).
	explicit operator bool() const noexcept { return owner_ != nullptr; }
	bool is_open() const noexcept { return owner_ != nullptr; }
	const std::string &name() const noexcept { return name_; }
	// The C handle, for calls this wrapper does not cover; nullptr when closed.
	::fr_ring_t *native_handle() const noexcept { return owner_ ? owner_->r : nullptr; }

	// Make the call waiting on this ring in another thread (or the next call) fail with
	// ECANCELED at once.
	void interrupt() noexcept
	{
		if (waker_)
			waker_->interrupt();
	}
	// Whether the other side is attached (for a producer: any consumer).
	bool peer_alive() const noexcept { return owner_ && ::fr_ring_peer_alive(owner_->r); }
	::fr_ring_stats stats() const
	{
		::fr_ring_stats st{};
		::fr_ring_get_stats(handle("stats of"), &st);
		return st;
	}
	std::vector<::fr_ring_consumer_info> consumers() const
	{
		std::vector<::fr_ring_consumer_info> out(FR_RING_MAX_CONSUMERS);
		int n = ::fr_ring_consumers(handle("consumers of"), out.data(), FR_RING_MAX_CONSUMERS);
		if (n < 0)
			throw error(n, where("consumers of"));
		out.resize(static_cast<std::size_t>(n) < out.size() ? static_cast<std::size_t>(n) : out.size());
		return out;
	}

	// End this side now (fr_ring_detach); the mapping goes with the last Frame/Reservation.
	// A no-op when closed already. Throws what fr_ring_detach() reported; closed either way.
	void close()
	{
		std::error_code ec;
		close(ec);
		if (ec)
			throw error(ec, where("close"));
	}
	void close(std::error_code &ec) noexcept
	{
		ec.clear();
		if (!owner_)
			return;
		waker_->target(nullptr);
		if (int rc = owner_->detach(); rc < 0)
			ec = make_error(rc);
		owner_.reset();
	}

protected:
	Side() noexcept = default;
	// Takes R over: closed again if what follows fails (no memory).
	Side(::fr_ring_t *r, std::string_view name)
	{
		try {
			name_ = name;
			waker_ = std::make_unique<Waker>(r);
			owner_ = std::make_shared<Owner>(r);
		} catch (...) {
			::fr_ring_close(&r);
			throw;
		}
	}
	Side(Side &&o) noexcept : owner_(std::move(o.owner_)), waker_(std::move(o.waker_)), name_(std::move(o.name_))
	{
	}
	Side &operator=(Side &&o) noexcept
	{
		if (this != &o) {
			std::error_code ignored;
			close(ignored);
			owner_ = std::move(o.owner_);
			waker_ = std::move(o.waker_);
			name_ = std::move(o.name_);
		}
		return *this;
	}
	~Side()
	{
		std::error_code ignored;
		close(ignored);
	}

	::fr_ring_t *handle(const char *what) const
	{
		if (!owner_)
			throw error(-EBADF, where(what));
		return owner_->r;
	}
	// "WHAT ring 'NAME'" for a message, saying so when the handle is closed (EBADF).
	std::string where(const char *what) const
	{
		return owner_ ? quoted(what, name_) : quoted(what, name_) + " (closed handle)";
	}

	// Go on in ring NEXT (a replacement): interrupt() wakes it from now on, this one is detached.
	void switch_to(std::shared_ptr<Owner> next) noexcept
	{
		waker_->target(next->r);
		owner_->detach();
		owner_ = std::move(next);
	}

	std::shared_ptr<Owner> owner_;
	std::unique_ptr<Waker> waker_; // never replaced while open: interrupt() reads it from any thread
	std::string name_;
};

} // namespace detail

// ---------------------------------------------------------------- Producer

class Producer : public detail::Side {
public:
	Producer() noexcept = default;
	// Create ring NAME and attach as its producer (fr_ring_create). Throws framering::error:
	// EINVAL, ENAMETOOLONG, EBUSY (a live producer has it), EEXIST, ENOSPC, ...
	explicit Producer(std::string_view name, const ProducerOptions &opts = {})
		: Side(create(name, opts), name)
	{
	}
	Producer(Producer &&) noexcept = default;
	Producer &operator=(Producer &&) noexcept = default;

	// Reserve a frame of FORMAT, WIDTH x HEIGHT (fr_frame_reserve), waiting up to TIMEOUT for
	// room under FullPolicy::block. Throws: ETIMEDOUT / EAGAIN (no room in time), ENOBUFS
	// (FullPolicy::drop: dropped), EALREADY (a Reservation is pending), EPIPE (end of stream
	// marked), ENOTCONN / EOWNERDEAD (the consumers left / died), EMSGSIZE, EINVAL.
	Reservation reserve(Format format, std::uint32_t width, std::uint32_t height, Timeout timeout = wait_forever)
	{
		std::error_code ec;
		Reservation out = try_reserve(format, width, height, ec, timeout);
		if (ec)
			throw error(ec, where("reserve a frame in"));
		return out;
	}
	// The same without exceptions: an empty Reservation and EC set on failure.
	Reservation try_reserve(Format format, std::uint32_t width, std::uint32_t height, std::error_code &ec,
				Timeout timeout = no_wait) noexcept
	{
		ec.clear();
		if (!owner_) {
			ec = make_error(-EBADF);
			return Reservation();
		}
		::fr_frame_header *h = nullptr;
		int rc = ::fr_frame_reserve(owner_->r, static_cast<std::uint32_t>(format), width, height, &h,
					 detail::to_ns(timeout));
		if (rc < 0) {
			ec = make_error(rc);
			return Reservation();
		}
		++owner_->gen;
		owner_->held = true;
		return Reservation(owner_, h);
	}

	// End of stream after the last committed frame (also done by close()).
	void mark_eos() { check(::fr_ring_mark_eos(handle("end the stream of")), "end the stream of"); }
	// End of stream because the producer failed: consumers get EREMOTEIO with MESSAGE.
	void mark_eos_error(std::error_code why, std::string_view message)
	{
		std::string msg(message);
		int err = why.value() > 0 ? -why.value() : -EIO;
		check(::fr_ring_mark_eos_error(handle("end the stream of"), err, msg.c_str()), "end the stream of");
	}
	// Wait until the lossless consumers have read everything committed.
	void wait_drained(Timeout timeout = wait_forever)
	{
		check(::fr_ring_wait_drained(handle("wait for the consumers of"), detail::to_ns(timeout)),
		      "wait for the consumers of");
	}
	// Wait until at least N consumers are attached.
	void wait_consumers(unsigned n, Timeout timeout = wait_forever)
	{
		check(::fr_ring_wait_consumers(handle("wait for the consumers of"), n, detail::to_ns(timeout)),
		      "wait for the consumers of");
	}
	void set_full_policy(FullPolicy p)
	{
		::fr_ring_set_full_policy(handle("set the policy of"), static_cast<::fr_ring_full_policy>(p));
	}
	// Keep frames in the first BYTES of the ring while the consumers keep up, waiting up to WAIT
	// for them to release the front (fr_ring_set_hot_lap): 0 sizes the lap for two frames (the
	// default), hot_lap_off uses the whole ring in turn; a negative WAIT takes the library's default.
	static constexpr std::uint64_t hot_lap_off = FR_RING_HOT_LAP_OFF;
	void set_hot_lap(std::uint64_t bytes,
			 std::chrono::nanoseconds wait = std::chrono::nanoseconds(FR_RING_HOT_WAIT_DEFAULT_NS))
	{
		check(::fr_ring_set_hot_lap(handle("set the hot lap of"), bytes, wait.count()),
		      "set the hot lap of");
	}
	// Count a frame of LEN bytes the caller chose not to write.
	void note_drop(std::size_t len) { ::fr_ring_note_drop(handle("count a drop in"), len); }
	// The largest record that fits (capacity / 2).
	std::size_t max_record() const { return ::fr_ring_max_record(handle("size of")); }
	// Go on in a new ring made with OPTS under the same name (fr_ring_replace), e.g. a larger one
	// when frames grew: the consumers read this ring to its end, then attach to the new one
	// (a Consumer does so by itself); frame numbers go on. Frames and Reservations of the
	// old ring stay mapped. On failure this ring goes on (but see fr_ring_replace on EEXIST).
	// Throws: EALREADY (a Reservation is pending), EPIPE (end of stream marked), and what
	// creating the ring throws.
	void replace(const ProducerOptions &opts)
	{
		::fr_ring_t *old = handle("replace");
		auto next = std::make_shared<detail::Owner>(nullptr); // before: no failure after the swap
		::fr_ring_create_opts c = convert(opts);
		if (int rc = ::fr_ring_replace(old, &next->r, &c); rc < 0)
			throw error(rc, where("replace"));
		switch_to(std::move(next)); // fr_ring_replace detached the old one already
	}
	// The stream description consumers read with Consumer::meta() (at most 256 bytes).
	void set_meta(const void *data, std::size_t len)
	{
		check(::fr_ring_set_meta(handle("set the meta of"), data, len), "set the meta of");
	}

private:
	static ::fr_ring_create_opts convert(const ProducerOptions &o) noexcept
	{
		::fr_ring_create_opts c{};
		c.capacity = o.capacity;
		c.mode = static_cast<mode_t>(o.permissions);
		c.on_full = static_cast<::fr_ring_full_policy>(o.on_full);
		c.max_consumers = o.max_consumers;
		return c;
	}
	static ::fr_ring_t *create(std::string_view name, const ProducerOptions &o)
	{
		std::string n(name);
		::fr_ring_create_opts c = convert(o);
		::fr_ring_t *r = nullptr;
		int rc = n.find('\0') != std::string::npos ? -EINVAL : ::fr_ring_create(&r, n.c_str(), &c);
		if (rc < 0)
			throw error(rc, detail::quoted("create", n));
		return r;
	}
	void check(int rc, const char *what) const
	{
		if (rc < 0)
			throw error(rc, where(what));
	}
};

// ---------------------------------------------------------------- Consumer

class FrameIterator;
class FrameRange;

class Consumer : public detail::Side {
public:
	Consumer() noexcept = default;
	// Attach to ring NAME as a consumer in MODE (fr_ring_attach), waiting up to WAIT for a live
	// producer (no_wait: it must exist now). Throws framering::error: ENOENT (no such ring),
	// ETIMEDOUT (none came within WAIT), EBUSY (every consumer slot taken), EPROTO, EBADMSG,
	// EACCES, EINVAL, ENAMETOOLONG.
	explicit Consumer(std::string_view name, Timeout wait = no_wait, Mode mode = Mode::every)
		: Side(attach(std::string(name), wait, mode), name), mode_(mode)
	{
	}
	Consumer(std::string_view name, Mode mode, Timeout wait = no_wait) : Consumer(name, wait, mode) {}
	Consumer(Consumer &&) noexcept = default;
	Consumer &operator=(Consumer &&) noexcept = default;

	Mode mode() const noexcept { return mode_; }

	// The next frame (every: in order; latest: the newest), waiting up to TIMEOUT. Releases
	// the frame held before. A ring replaced by its producer (ESTALE) is followed: attached
	// again by name, as the Python Consumer does, waiting up to TIMEOUT for the new ring (the
	// errors of the Consumer constructor if it does not come). Throws framering::error:
	//   ENODATA end of stream; EREMOTEIO the producer failed (what() has its reason);
	//   ETIMEDOUT / EAGAIN nothing within TIMEOUT; EOWNERDEAD the producer died;
	//   ENOMSG a record that is no valid frame was skipped, EPROTO a frame of another
	//   version was skipped (the next call goes on); EBADMSG the ring is corrupt (stop);
	//   ECANCELED interrupt(); EINTR a signal handler ran; EFAULT the segment shrank.
	Frame peek(Timeout timeout = wait_forever) { return checked(try_peek(last_, timeout)); }
	// Like peek(), but discard every frame but the newest first (counted in Frame::skipped()).
	Frame peek_latest(Timeout timeout = wait_forever) { return checked(try_peek_latest(last_, timeout)); }

	// The non-throwing hot path: an empty Frame and EC set on failure (the codes of peek()).
	Frame try_peek(std::error_code &ec, Timeout timeout = no_wait) noexcept { return get(ec, false, timeout); }
	Frame try_peek_latest(std::error_code &ec, Timeout timeout = no_wait) noexcept
	{
		return get(ec, true, timeout);
	}

	// Iterate every frame until end of stream, each waited for up to TIMEOUT; records that
	// are no valid frames are skipped (counted in invalid_frames()); any other error throws.
	FrameRange frames(Timeout timeout = wait_forever);
	FrameIterator begin();
	FrameIterator end() noexcept;

	// Discard every committed frame but the newest, without waiting; how many went. Releases
	// the frame held before, as peek() does.
	std::int64_t skip_to_latest()
	{
		::fr_ring_t *r = handle("skip in");
		if (owner_->held) {
			owner_->held = false;
			if (int rc = ::fr_ring_release(r); rc < 0)
				throw error(rc, where("skip in"));
		}
		std::int64_t n = ::fr_ring_skip_to_latest(r);
		if (n < 0)
			throw error(static_cast<int>(n), where("skip in"));
		return n;
	}
	// Why the stream ended: an empty code if it ended cleanly (or has not ended).
	EndReason end_reason() const
	{
		char msg[FR_RING_EOS_MESSAGE_MAX];
		int rc = ::fr_ring_end_reason(handle("the end of"), msg, sizeof msg);
		return EndReason{make_error(rc), rc < 0 ? std::string(msg) : std::string()};
	}
	// The producer's stream description (Producer::set_meta).
	std::vector<std::uint8_t> meta() const
	{
		std::vector<std::uint8_t> out(FR_RING_META_SIZE);
		int n = ::fr_ring_get_meta(handle("the meta of"), out.data(), out.size());
		if (n < 0)
			throw error(n, where("the meta of"));
		out.resize(static_cast<std::size_t>(n) < out.size() ? static_cast<std::size_t>(n) : out.size());
		return out;
	}
	// Records skipped by frames() because they were no valid frames.
	std::uint64_t invalid_frames() const noexcept { return invalid_; }
	// Times the producer replaced the ring and the consumer followed.
	std::uint64_t replacements() const noexcept { return replacements_; }

private:
	friend class FrameIterator;

	static ::fr_ring_t *attach(const std::string &name, Timeout wait, Mode mode)
	{
		::fr_ring_t *r = nullptr;
		int rc = try_attach(name, wait, mode, &r);
		if (rc < 0)
			throw error(rc, detail::quoted("attach to", name));
		return r;
	}
	static int try_attach(const std::string &name, Timeout wait, Mode mode, ::fr_ring_t **r) noexcept
	{
		if (name.find('\0') != std::string::npos)
			return -EINVAL;
		::fr_ring_attach_opts o{};
		o.mode = static_cast<::fr_ring_consumer_mode>(mode);
		o.wait_ns = detail::to_ns(wait);
		return ::fr_ring_attach(r, name.c_str(), &o);
	}

	Frame get(std::error_code &ec, bool latest, Timeout timeout) noexcept
	{
		ec.clear();
		if (!owner_) {
			ec = make_error(-EBADF);
			return Frame();
		}
		for (;;) {
			detail::Owner &o = *owner_;
			if (o.held) { // one frame at a time: the Frame that held it is released() now
				o.held = false;
				if (int rc = ::fr_ring_release(o.r); rc < 0) {
					ec = make_error(rc);
					return Frame();
				}
			}
			::fr_frame_header h;
			const std::uint8_t *rec = nullptr;
			std::uint64_t skipped = 0;
			int rc = ::fr_frame_peek(o.r, &h, &rec, latest, &skipped, detail::to_ns(timeout));
			if (rc == -ESTALE)
				FRAMERING_TEST_SEAM_AFTER_STALE();
			if (rc == -ESTALE && (rc = follow(timeout)) == 0)
				continue;
			if (rc == -ECANCELED)
				waker_->taken();
			if (rc < 0) {
				ec = make_error(rc);
				return Frame();
			}
			++o.gen;
			o.held = true;
			return Frame(owner_, h, rec, skipped);
		}
	}

	// The producer replaced the ring: attach to its name again (the new ring is normally in
	// place), waiting up to TIMEOUT; ECANCELED if interrupt() came meanwhile, or came to the
	// old ring during the peek that said ESTALE (or before it) and no wait took it.
	int follow(Timeout timeout) noexcept
	{
		waker_->leave(); // no handle to wake while attaching: interrupt() is kept for us
		::fr_ring_t *r = nullptr;
		int rc = attach_next(timeout, &r);
		if (rc == 0) {
			try {
				switch_to(std::make_shared<detail::Owner>(r));
				++replacements_;
				return 0;
			} catch (const std::bad_alloc &) {
				::fr_ring_close(&r);
				rc = -ENOMEM;
			}
		}
		waker_->target(owner_->r); // an interrupt() that came late goes to the next call
		return rc;
	}
	// fr_ring_attach() to our name, waiting up to TIMEOUT in short slices: there is no handle
	// that interrupt() could wake meanwhile, so it is looked for between them.
	int attach_next(Timeout timeout, ::fr_ring_t **r) noexcept
	{
		using clock = std::chrono::steady_clock;
		constexpr Timeout slice = std::chrono::milliseconds(10);
		const auto start = clock::now();
		for (;;) {
			if (waker_->take_pending())
				return -ECANCELED;
			Timeout left = timeout == wait_forever ? wait_forever
				: timeout - std::chrono::duration_cast<Timeout>(clock::now() - start);
			int rc = try_attach(name_, left < slice ? left : slice, mode_, r);
			if (rc != -ETIMEDOUT || left <= slice)
				return rc;
		}
	}

	Frame checked(Frame f)
	{
		if (last_)
			throw_last();
		return f;
	}
	[[noreturn]] void throw_last() const
	{
		std::string what = where("read");
		if (last_.value() == EREMOTEIO && owner_) {
			EndReason why = end_reason();
			what += ": the producer failed: " + (why.message.empty() ? why.code.message() : detail::escaped(why.message));
		}
		throw error(last_, what);
	}

	Mode mode_ = Mode::every;
	std::error_code last_;
	std::uint64_t invalid_ = 0;
	std::uint64_t replacements_ = 0;
};

// An input iterator over a consumer's frames; the end iterator is reached at end of stream.
// Incrementing releases the frame held and waits for the next.
class FrameIterator {
public:
	using iterator_category = std::input_iterator_tag;
	using value_type = Frame;
	using difference_type = std::ptrdiff_t;
	using pointer = Frame *;
	using reference = Frame &;

	FrameIterator() noexcept = default;
	Frame &operator*() noexcept { return cur_; }
	Frame *operator->() noexcept { return &cur_; }
	FrameIterator &operator++()
	{
		advance();
		return *this;
	}
	friend bool operator==(const FrameIterator &a, const FrameIterator &b) noexcept
	{
		return a.cons_ == b.cons_;
	}
	friend bool operator!=(const FrameIterator &a, const FrameIterator &b) noexcept { return !(a == b); }

private:
	friend class Consumer;
	friend class FrameRange;
	FrameIterator(Consumer *c, Timeout t) : cons_(c), timeout_(t) { advance(); }

	void advance()
	{
		cur_ = Frame();
		for (;;) {
			std::error_code ec;
			Frame f = cons_->try_peek(ec, timeout_);
			if (!ec) {
				cur_ = std::move(f);
				return;
			}
			if (ec.value() == ENODATA) {
				cons_ = nullptr; // end of stream: equal to end()
				return;
			}
			if (ec.value() == ENOMSG) { // one damaged record, skipped: read on
				++cons_->invalid_;
				continue;
			}
			cons_->last_ = ec;
			cons_->throw_last();
		}
	}

	Consumer *cons_ = nullptr;
	Timeout timeout_ = wait_forever;
	Frame cur_;
};

class FrameRange {
public:
	FrameIterator begin() { return FrameIterator(cons_, timeout_); }
	FrameIterator end() noexcept { return FrameIterator(); }

private:
	friend class Consumer;
	FrameRange(Consumer *c, Timeout t) noexcept : cons_(c), timeout_(t) {}
	Consumer *cons_;
	Timeout timeout_;
};

inline FrameRange Consumer::frames(Timeout timeout) { return FrameRange(this, timeout); }
inline FrameIterator Consumer::begin() { return FrameIterator(this, wait_forever); }
inline FrameIterator Consumer::end() noexcept { return FrameIterator(); }

} // namespace framering

#endif // FRAMERING_FRAMERING_HPP
