// main.cpp - an outside C++ program that round-trips one frame through an installed framering.hpp.
#include <framering/framering.hpp>

#include <cstdio>
#include <string>
#include <unistd.h>

int main()
{
	using namespace std::chrono_literals;
	std::string name = "install-test-cpp-" + std::to_string(getpid());
	try {
		framering::Producer prod(name, {1u << 20});
		framering::Consumer cons(name);
		framering::Reservation out = prod.reserve(framering::Format::gray8, 64, 48, 1s);
		out.plane(0).row(47)[63] = 42;
		out.commit();
		prod.mark_eos();
		unsigned n = 0;
		for (framering::Frame &f : cons) {
			if (f.width() != 64 || f.height() != 48 || f.plane(0).row(47)[63] != 42) {
				std::fprintf(stderr, "install test (C++): frame mismatch\n");
				return 1;
			}
			n++;
		}
		if (n != 1) {
			std::fprintf(stderr, "install test (C++): %u frames, expected 1\n", n);
			return 1;
		}
	} catch (const framering::error &e) {
		std::fprintf(stderr, "install test (C++): %s\n", e.what());
		return 1;
	}
	std::printf("ok: 64x48 gray8 frame through an installed framering.hpp\n");
	return 0;
}
