#pragma once
// An unsigned big integer stored in base 10^9, so that printing it in decimal
// is linear (a binary big integer needs a quadratic conversion, ~0.5 s for F(10^6)).
// Only what the Fibonacci sequence needs: add, subtract, multiply (Karatsuba
// above a threshold) and decimal conversion.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace protohost::plugins::fibonacci {

class BigDecimal {
 public:
  static constexpr std::uint32_t kBase = 1000000000u;  // 10^9 per limb
  static constexpr int kDigitsPerLimb = 9;

  BigDecimal() = default;
  explicit BigDecimal(std::uint64_t value);

  /// Parses a non-empty string of decimal digits; throws std::invalid_argument otherwise.
  static BigDecimal fromString(std::string_view digits);

  bool isZero() const { return limbs_.empty(); }
  /// Number of base-10^9 limbs (0 for zero).
  std::size_t limbCount() const { return limbs_.size(); }

  /// Decimal digits, no sign, no leading zeros ("0" for zero).
  std::string toString() const;
  /// Appends the decimal digits to @p out (no intermediate string).
  void appendTo(std::string& out) const;

  BigDecimal& operator+=(const BigDecimal& other);
  /// Requires *this >= other (throws std::underflow_error otherwise).
  BigDecimal& operator-=(const BigDecimal& other);

  friend BigDecimal operator+(BigDecimal a, const BigDecimal& b) { return a += b; }
  friend BigDecimal operator-(BigDecimal a, const BigDecimal& b) { return a -= b; }
  friend BigDecimal operator*(const BigDecimal& a, const BigDecimal& b);
  friend bool operator==(const BigDecimal& a, const BigDecimal& b) { return a.limbs_ == b.limbs_; }
  friend int compare(const BigDecimal& a, const BigDecimal& b);

  /// Writes the 9 digits of a limb < 10^9, leading zeros kept, to @p out (exposed for tests).
  static void writeLimbForTest(char* out, std::uint32_t limb);

  /// Schoolbook product, whatever the sizes (exposed to test the Karatsuba path against it).
  static BigDecimal multiplySchoolbook(const BigDecimal& a, const BigDecimal& b);

 private:
  void trim();

  std::vector<std::uint32_t> limbs_;  // little-endian, no leading zero limbs
};

}  // namespace protohost::plugins::fibonacci
