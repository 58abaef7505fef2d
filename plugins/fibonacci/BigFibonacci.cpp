#include "BigFibonacci.h"

#include <bit>
#include <stdexcept>

namespace protohost::plugins::fibonacci {

std::pair<BigDecimal, BigDecimal> fibonacciPair(std::uint64_t n) {
  // Invariant: (a, b) = (F(m), F(m+1)) for m = the bits of n consumed so far.
  //   F(2m)   = F(m) * (2 F(m+1) - F(m))
  //   F(2m+1) = F(m)^2 + F(m+1)^2
  BigDecimal a;                 // F(0)
  BigDecimal b(std::uint64_t{1});  // F(1)
  for (int bit = std::bit_width(n) - 1; bit >= 0; --bit) {
    BigDecimal twiceB = b + b;
    BigDecimal c = a * (twiceB - a);
    BigDecimal d = a * a + b * b;
    if ((n >> bit) & 1u) {
      a = d;
      b = std::move(c);
      b += a;
    } else {
      a = std::move(c);
      b = std::move(d);
    }
  }
  return {std::move(a), std::move(b)};
}

void FibonacciCursor::seek(std::uint64_t k) {
  if (k == 0) throw std::invalid_argument("FibonacciCursor: answers start at 1");
  auto [f, g] = fibonacciPair(fibonacciIndexOfAnswer(k));
  current_ = std::move(f);
  next_ = std::move(g);
  answer_ = k;
}

void FibonacciCursor::advance() {
  // (F(i), F(i+1)) -> (F(i+1), F(i) + F(i+1)), reusing current_'s storage.
  current_ += next_;
  std::swap(current_, next_);
  ++answer_;
}

}  // namespace protohost::plugins::fibonacci
