#pragma once
// Fibonacci numbers as exact decimal big integers, F(1) = F(2) = 1.
//
// The sequence the plugin serves is the article's (a = b = 1, answer = a + b):
// answer k (k = 1, 2, ...) is F(k + 2), so the answers are 2, 3, 5, 8, 13, ...
// FibonacciCursor keeps the current pair in memory and advances by one
// addition per answer; fast doubling is used only to (re)position it.

#include <cstdint>
#include <string>
#include <utility>

#include "BigDecimal.h"

namespace protohost::plugins::fibonacci {

/// (F(n), F(n+1)) by fast doubling: O(log n) multiplications.
std::pair<BigDecimal, BigDecimal> fibonacciPair(std::uint64_t n);

/// F(n).
inline BigDecimal fibonacci(std::uint64_t n) { return fibonacciPair(n).first; }

/// The Fibonacci index of answer @p k: F(k + 2).
constexpr std::uint64_t fibonacciIndexOfAnswer(std::uint64_t k) { return k + 2; }

/// Walks the answers in order. Not thread-safe (Sequence guards it).
class FibonacciCursor {
 public:
  /// Positioned at answer 1 (value 2).
  FibonacciCursor() { seek(1); }

  /// Positions at answer @p k (k >= 1) by fast doubling.
  void seek(std::uint64_t k);

  /// The answer number the cursor is at.
  std::uint64_t answer() const { return answer_; }
  /// The value of the current answer.
  const BigDecimal& value() const { return current_; }
  /// Moves to the next answer: one big addition.
  void advance();

 private:
  std::uint64_t answer_ = 0;
  BigDecimal current_;  // F(answer_ + 2)
  BigDecimal next_;     // F(answer_ + 3)
};

}  // namespace protohost::plugins::fibonacci
