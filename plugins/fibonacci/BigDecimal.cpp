#include "BigDecimal.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace protohost::plugins::fibonacci {

namespace {

using Limb = std::uint32_t;
using Limbs = std::vector<Limb>;
constexpr std::uint64_t kBase = BigDecimal::kBase;
// Below this many limbs (of the shorter factor) schoolbook beats Karatsuba.
constexpr std::size_t kKaratsubaThreshold = 40;

void trimLimbs(Limbs& v) {
  while (!v.empty() && v.back() == 0) v.pop_back();
}

std::size_t significant(const Limb* p, std::size_t n) {
  while (n > 0 && p[n - 1] == 0) --n;
  return n;
}

// r[shift...] += a[0..n); r grows as needed.
void addShifted(Limbs& r, const Limb* a, std::size_t n, std::size_t shift) {
  if (r.size() < shift + n + 1) r.resize(shift + n + 1, 0);
  std::uint32_t carry = 0;
  std::size_t i = 0;
  Limb* out = r.data() + shift;  // raw pointers: the loop is the sequence's per-answer cost
  for (; i < n; ++i) {
    const std::uint32_t s = out[i] + a[i] + carry;  // < 2 * 10^9 + 1 < 2^32
    carry = s >= static_cast<Limb>(kBase);
    out[i] = s - (carry ? static_cast<Limb>(kBase) : 0u);
  }
  for (std::size_t k = shift + i; carry; ++k) {
    if (k == r.size()) r.push_back(0);
    std::uint32_t s = r[k] + carry;
    carry = s >= kBase ? 1 : 0;
    r[k] = carry ? s - static_cast<Limb>(kBase) : s;
  }
}

// r -= a (r >= a as numbers).
void subtractInPlace(Limbs& r, const Limbs& a) {
  std::int64_t borrow = 0;
  std::size_t i = 0;
  for (; i < a.size(); ++i) {
    std::int64_t d = static_cast<std::int64_t>(r[i]) - a[i] - borrow;
    borrow = d < 0 ? 1 : 0;
    r[i] = static_cast<Limb>(d < 0 ? d + static_cast<std::int64_t>(kBase) : d);
  }
  for (; borrow && i < r.size(); ++i) {
    std::int64_t d = static_cast<std::int64_t>(r[i]) - borrow;
    borrow = d < 0 ? 1 : 0;
    r[i] = static_cast<Limb>(d < 0 ? d + static_cast<std::int64_t>(kBase) : d);
  }
  if (borrow) throw std::underflow_error("BigDecimal: negative result");
  trimLimbs(r);
}

// Product scanning: each output limb sums its column of partial products in a
// uint64, reducing modulo 10^9 only every 16 products (16 * (10^9-1)^2 < 2^64),
// instead of dividing after every product.
Limbs schoolbook(const Limb* a, std::size_t an, const Limb* b, std::size_t bn) {
  if (an < bn) {
    std::swap(a, b);
    std::swap(an, bn);
  }
  Limbs r(an + bn, 0);
  std::uint64_t carry = 0;  // into the current column, in units of that column
  for (std::size_t col = 0; col + 1 < an + bn; ++col) {
    // pairs (i, j) with i + j = col, i < an, j < bn
    const std::size_t jmin = col >= an ? col - an + 1 : 0;
    const std::size_t jmax = std::min(col, bn - 1);
    std::uint64_t high = carry / kBase;  // carries stay below 2^64: < (bn + 1) * 2 * 10^9
    std::uint64_t acc = carry % kBase;
    int pending = 1;
    for (std::size_t j = jmin; j <= jmax; ++j) {
      acc += static_cast<std::uint64_t>(a[col - j]) * b[j];
      if (++pending == 16) {
        high += acc / kBase;
        acc %= kBase;
        pending = 0;
      }
    }
    high += acc / kBase;
    r[col] = static_cast<Limb>(acc % kBase);
    carry = high;
  }
  r[an + bn - 1] = static_cast<Limb>(carry);  // the product has at most an + bn limbs
  trimLimbs(r);
  return r;
}

Limbs sum(const Limb* a, std::size_t an, const Limb* b, std::size_t bn) {
  Limbs r(a, a + an);
  addShifted(r, b, bn, 0);
  trimLimbs(r);
  return r;
}

Limbs multiply(const Limb* a, std::size_t an, const Limb* b, std::size_t bn) {
  an = significant(a, an);
  bn = significant(b, bn);
  if (an == 0 || bn == 0) return {};
  if (std::min(an, bn) < kKaratsubaThreshold) return schoolbook(a, an, b, bn);
  const std::size_t m = std::max(an, bn) / 2;
  // a = a1 * B^m + a0, b = b1 * B^m + b0 (a1 or b1 may be empty when unbalanced).
  const std::size_t a0n = std::min(an, m), a1n = an - a0n;
  const std::size_t b0n = std::min(bn, m), b1n = bn - b0n;
  const Limb* a1 = a + a0n;
  const Limb* b1 = b + b0n;
  Limbs z0 = multiply(a, a0n, b, b0n);
  Limbs z2 = multiply(a1, a1n, b1, b1n);
  Limbs sa = sum(a, a0n, a1, a1n);
  Limbs sb = sum(b, b0n, b1, b1n);
  Limbs z1 = multiply(sa.data(), sa.size(), sb.data(), sb.size());
  subtractInPlace(z1, z0);
  subtractInPlace(z1, z2);
  Limbs r = std::move(z0);
  addShifted(r, z1.data(), z1.size(), m);
  addShifted(r, z2.data(), z2.size(), 2 * m);
  trimLimbs(r);
  return r;
}

}  // namespace

BigDecimal::BigDecimal(std::uint64_t value) {
  while (value != 0) {
    limbs_.push_back(static_cast<Limb>(value % kBase));
    value /= kBase;
  }
}

BigDecimal BigDecimal::fromString(std::string_view digits) {
  if (digits.empty()) throw std::invalid_argument("BigDecimal: empty string");
  for (char c : digits)
    if (c < '0' || c > '9') throw std::invalid_argument("BigDecimal: not a decimal digit");
  BigDecimal r;
  std::size_t end = digits.size();
  while (end > 0) {
    std::size_t begin = end >= kDigitsPerLimb ? end - kDigitsPerLimb : 0;
    Limb v = 0;
    std::from_chars(digits.data() + begin, digits.data() + end, v);
    r.limbs_.push_back(v);
    end = begin;
  }
  r.trim();
  return r;
}

void BigDecimal::trim() { trimLimbs(limbs_); }

namespace {

// The 9 decimal digits of one full limb (v < 10^9, leading zeros kept), written
// without a division per digit: the top digit, then the other 8 side by side in
// one 64-bit word (SWAR), each split step being a multiply and a shift that is
// exact for its range (checked for every input by BigNumberTest):
//   n / 100 == (n * 10486) >> 20 for n < 10^4;  n / 10 == (n * 103) >> 10 for n < 100.
// Byte 0 of the word is the most significant digit (little-endian stores).
void writeNineDigits(char* p, std::uint32_t v) {
  const std::uint32_t top = v / 100000000u;
  const std::uint64_t low8 = v - top * 100000000u;
  std::uint64_t w = low8 / 10000u | (low8 % 10000u) << 32;                // two 4-digit lanes
  std::uint64_t q = ((w * 10486u) >> 20) & 0x0000007F0000007Full;        // each / 100
  w = q | (w - q * 100u) << 16;                                            // four 2-digit lanes
  q = ((w * 103u) >> 10) & 0x000F000F000F000Full;                          // each / 10
  w = q | (w - q * 10u) << 8;                                              // eight digits
  w += 0x3030303030303030ull;                                              // to ASCII
  p[0] = static_cast<char>('0' + top);
  static_assert(std::endian::native == std::endian::little, "writeNineDigits assumes little-endian");
  std::memcpy(p + 1, &w, 8);
}

}  // namespace

void BigDecimal::appendTo(std::string& out) const {
  if (limbs_.empty()) {
    out.push_back('0');
    return;
  }
  char buf[16];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, limbs_.back());
  (void)ec;
  out.append(buf, end);
  const std::size_t start = out.size();
  out.resize(start + (limbs_.size() - 1) * kDigitsPerLimb);
  char* p = out.data() + start;
  for (std::size_t i = limbs_.size() - 1; i-- > 0;) {
    writeNineDigits(p, limbs_[i]);
    p += kDigitsPerLimb;
  }
}

void BigDecimal::writeLimbForTest(char* out, std::uint32_t limb) { writeNineDigits(out, limb); }

std::string BigDecimal::toString() const {
  std::string s;
  s.reserve(limbs_.size() * kDigitsPerLimb + 1);
  appendTo(s);
  return s;
}

BigDecimal& BigDecimal::operator+=(const BigDecimal& other) {
  addShifted(limbs_, other.limbs_.data(), other.limbs_.size(), 0);
  trim();
  return *this;
}

BigDecimal& BigDecimal::operator-=(const BigDecimal& other) {
  if (compare(*this, other) < 0) throw std::underflow_error("BigDecimal: negative result");
  subtractInPlace(limbs_, other.limbs_);
  return *this;
}

BigDecimal operator*(const BigDecimal& a, const BigDecimal& b) {
  BigDecimal r;
  r.limbs_ = multiply(a.limbs_.data(), a.limbs_.size(), b.limbs_.data(), b.limbs_.size());
  return r;
}

BigDecimal BigDecimal::multiplySchoolbook(const BigDecimal& a, const BigDecimal& b) {
  BigDecimal r;
  if (a.isZero() || b.isZero()) return r;
  r.limbs_ = schoolbook(a.limbs_.data(), a.limbs_.size(), b.limbs_.data(), b.limbs_.size());
  return r;
}

int compare(const BigDecimal& a, const BigDecimal& b) {
  if (a.limbs_.size() != b.limbs_.size()) return a.limbs_.size() < b.limbs_.size() ? -1 : 1;
  for (std::size_t i = a.limbs_.size(); i-- > 0;)
    if (a.limbs_[i] != b.limbs_[i]) return a.limbs_[i] < b.limbs_[i] ? -1 : 1;
  return 0;
}

}  // namespace protohost::plugins::fibonacci
