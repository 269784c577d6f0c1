// capture_consumer.cpp - a C++ consumer of framering-capture, for the end-to-end test:
//   capture_consumer RING FRAMES WIDTH HEIGHT
// waits up to 20 s for ring RING, reads it to end of stream with a range-for and checks
// that exactly FRAMES bgr24 frames of WIDTH x HEIGHT came, numbered from 0 without a gap,
// with rising pts, a time base, capture times in the past and every row inside its plane.
#include <framering/framering.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

using namespace std::chrono_literals;

static int bad(const std::string &what)
{
	std::fprintf(stderr, "capture_consumer: %s\n", what.c_str());
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 5)
		return bad("usage: capture_consumer RING FRAMES WIDTH HEIGHT");
	const std::uint64_t frames = std::strtoull(argv[2], nullptr, 10);
	const std::uint32_t width = static_cast<std::uint32_t>(std::strtoul(argv[3], nullptr, 10));
	const std::uint32_t height = static_cast<std::uint32_t>(std::strtoul(argv[4], nullptr, 10));
	try {
		framering::Consumer cons(argv[1], 20s);
		std::uint64_t n = 0;
		std::int64_t last_pts = -1;
		for (framering::Frame &f : cons.frames(10s)) {
			std::string at = "frame " + std::to_string(n) + ": ";
			if (f.seq() != n)
				return bad(at + "seq " + std::to_string(f.seq()));
			if (f.format() != framering::Format::bgr24 || f.plane_count() != 1)
				return bad(at + "format " + framering::format_name_of(f.format()));
			if (f.width() != width || f.height() != height)
				return bad(at + "size " + std::to_string(f.width()) + "x" + std::to_string(f.height()));
			if (!f.pts() || *f.pts() <= last_pts)
				return bad(at + "pts missing or not rising");
			last_pts = *f.pts();
			if (f.time_base_num() <= 0 || f.time_base_den() <= 0)
				return bad(at + "no time base");
			if (f.latency() < 0s || f.latency() > 60s)
				return bad(at + "capture time not in the last minute");
			framering::Plane p = f.plane(0);
			if (p.rows != height || p.row_bytes != width * 3u || p.stride < p.row_bytes)
				return bad(at + "plane geometry");
			if (f.header().image_size < p.stride * (p.rows - 1) + p.row_bytes)
				return bad(at + "image_size smaller than its plane");
			unsigned sum = 0; // touch the first and the last row where they lie
			for (std::size_t x = 0; x < p.row_bytes; x++)
				sum += static_cast<unsigned>(p.row(0)[x]) + p.row(p.rows - 1)[x];
			if (sum == 0)
				return bad(at + "first and last rows are black: testsrc2 is not");
			n++;
		}
		if (n != frames)
			return bad(std::to_string(n) + " frames, expected " + std::to_string(frames));
		if (cons.end_reason().code)
			return bad("the stream ended on an error: " + cons.end_reason().message);
		std::printf("capture_consumer: %llu frames of %ux%u bgr24, seq 0..%llu, pts rising\n",
			    static_cast<unsigned long long>(n), width, height,
			    static_cast<unsigned long long>(n - 1));
		return 0;
	} catch (const framering::error &e) {
		return bad(e.what());
	}
}
