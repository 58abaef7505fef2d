// What a jump costs a host with store = postgres: positioning the sequence at a
// block far ahead of its last answer. Fast doubling (what the plugin does, on
// a worker thread) against walking every number between (one big addition per
// step, what it avoids). Not a test: prints the medians of a few runs.
//   build/bin/fibonacci_jump_cost [repetitions]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "BigFibonacci.h"

using protohost::plugins::fibonacci::FibonacciCursor;
using Clock = std::chrono::steady_clock;

namespace {

template <class Fn>
double medianMs(int reps, Fn fn) {
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = Clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
  std::printf("fast doubling (FibonacciCursor::seek), median of %d:\n", reps);
  for (std::uint64_t target : {100000ull, 200000ull, 1000000ull, 1100000ull, 2000000ull}) {
    const double ms = medianMs(reps, [&] {
      FibonacciCursor c;
      c.seek(target);
    });
    std::printf("  to answer %8llu: %9.2f ms\n", static_cast<unsigned long long>(target), ms);
  }
  std::printf("walking (one addition per answer), median of %d:\n", reps);
  for (auto [from, steps] : {std::pair<std::uint64_t, std::uint64_t>{100000, 100000}, {1000000, 100000}}) {
    FibonacciCursor start;
    start.seek(from);
    const double ms = medianMs(reps, [&] {
      FibonacciCursor c = start;
      for (std::uint64_t i = 0; i < steps; ++i) c.advance();
    });
    std::printf("  %llu answers from answer %llu: %9.2f ms\n", static_cast<unsigned long long>(steps),
                static_cast<unsigned long long>(from), ms);
  }
  return 0;
}
