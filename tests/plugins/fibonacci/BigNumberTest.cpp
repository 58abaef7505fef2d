#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>

#include "BigDecimal.h"
#include "BigFibonacci.h"
#include "FibTestSupport.h"

using protohost::plugins::fibonacci::BigDecimal;
using protohost::plugins::fibonacci::fibonacci;
using protohost::plugins::fibonacci::fibonacciPair;
using protohost::plugins::fibonacci::FibonacciCursor;

namespace {

std::string randomDigits(std::mt19937_64& rng, std::size_t n) {
  std::string s;
  s.push_back(static_cast<char>('1' + rng() % 9));
  while (s.size() < n) s.push_back(static_cast<char>('0' + rng() % 10));
  return s;
}

// Long multiplication digit by digit: independent of BigDecimal's limbs and carries.
std::string multiplyDecimal(const std::string& a, const std::string& b) {
  std::vector<int> r(a.size() + b.size(), 0);
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::size_t j = 0; j < b.size(); ++j) r[i + j + 1] += (a[i] - '0') * (b[j] - '0');
  for (std::size_t k = r.size(); k-- > 1;) {
    r[k - 1] += r[k] / 10;
    r[k] %= 10;
  }
  std::string s;
  for (int d : r)
    if (!(s.empty() && d == 0)) s.push_back(static_cast<char>('0' + d));
  return s.empty() ? "0" : s;
}

}  // namespace

TEST(BigDecimal, MultiplicationMatchesDigitByDigitReference) {
  std::mt19937_64 rng(3);
  for (int round = 0; round < 60; ++round) {
    std::string x = randomDigits(rng, 1 + rng() % 900), y = randomDigits(rng, 1 + rng() % 900);
    if (round % 5 == 0) x = std::string(x.size(), '9');  // maximal limbs: every carry path
    ASSERT_EQ((BigDecimal::fromString(x) * BigDecimal::fromString(y)).toString(), multiplyDecimal(x, y))
        << x.size() << " x " << y.size() << " digits";
  }
}

TEST(BigDecimal, RoundTripsDecimalStrings) {
  for (std::string s : {"0", "1", "999999999", "1000000000", "1000000001", "123456789012345678901234567890",
                        "100000000000000000000000000000000000"}) {
    EXPECT_EQ(BigDecimal::fromString(s).toString(), s);
  }
  EXPECT_EQ(BigDecimal::fromString("000123").toString(), "123");
  EXPECT_EQ(BigDecimal(UINT64_MAX).toString(), "18446744073709551615");
  EXPECT_EQ(BigDecimal().toString(), "0");
  EXPECT_THROW(BigDecimal::fromString(""), std::invalid_argument);
  EXPECT_THROW(BigDecimal::fromString("12a"), std::invalid_argument);
}

TEST(BigDecimal, NineDigitLimbRenderingMatchesPrintfForEveryLaneValue) {
  // writeNineDigits splits a limb into the top digit and two 4-digit lanes
  // computed side by side: every value of each lane (with the other lane and
  // the top digit varied) plus random limbs, against snprintf's "%09u".
  auto check = [](std::uint32_t v) {
    char want[16], got[9];
    std::snprintf(want, sizeof want, "%09u", static_cast<unsigned>(v));
    BigDecimal::writeLimbForTest(got, v);
    return std::string(got, 9) == want;
  };
  std::mt19937_64 rng(7);
  for (std::uint32_t lane = 0; lane < 10000; ++lane) {
    const std::uint32_t other = static_cast<std::uint32_t>(rng() % 10000), top = lane % 10;
    ASSERT_TRUE(check(top * 100000000u + lane * 10000u + other)) << "high lane " << lane;
    ASSERT_TRUE(check(top * 100000000u + other * 10000u + lane)) << "low lane " << lane;
  }
  for (std::uint32_t v : {0u, 1u, 9u, 10u, 99999999u, 100000000u, 999999999u, 123456789u, 900000009u})
    EXPECT_TRUE(check(v)) << v;
  for (int i = 0; i < 200000; ++i) {
    const auto v = static_cast<std::uint32_t>(rng() % 1000000000u);
    ASSERT_TRUE(check(v)) << v;
  }
}

TEST(BigDecimal, AddsAndSubtractsWithCarriesAcrossLimbs) {
  BigDecimal a = BigDecimal::fromString("999999999999999999999999999");
  EXPECT_EQ((a + BigDecimal(1)).toString(), "1000000000000000000000000000");
  EXPECT_EQ((BigDecimal::fromString("1000000000000000000000000000") - BigDecimal(1)).toString(),
            "999999999999999999999999999");
  EXPECT_EQ((a - a).toString(), "0");
  EXPECT_THROW(BigDecimal(1) - BigDecimal(2), std::underflow_error);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200; ++i) {
    std::string x = randomDigits(rng, 1 + rng() % 80), y = randomDigits(rng, 1 + rng() % 80);
    BigDecimal bx = BigDecimal::fromString(x), by = BigDecimal::fromString(y);
    std::string sum = fibtest::addDecimal(x, y);
    ASSERT_EQ((bx + by).toString(), sum);
    ASSERT_EQ((BigDecimal::fromString(sum) - by).toString(), x);
  }
}

TEST(BigDecimal, KaratsubaMatchesSchoolbook) {
  std::mt19937_64 rng(42);
  for (std::size_t digits : {10u, 200u, 361u, 500u, 2000u, 5000u, 12345u}) {
    for (int round = 0; round < 3; ++round) {
      BigDecimal a = BigDecimal::fromString(randomDigits(rng, digits));
      BigDecimal b = BigDecimal::fromString(randomDigits(rng, digits - digits / (round + 2)));
      ASSERT_EQ(a * b, BigDecimal::multiplySchoolbook(a, b)) << digits << " digits, round " << round;
      ASSERT_EQ(a * a, BigDecimal::multiplySchoolbook(a, a)) << digits << " digits, round " << round;
    }
  }
  // Limbs of 999999999 everywhere: the worst case for carries.
  BigDecimal nines = BigDecimal::fromString(std::string(9 * 300, '9'));
  EXPECT_EQ(nines * nines, BigDecimal::multiplySchoolbook(nines, nines));
  EXPECT_EQ((nines * BigDecimal()).toString(), "0");
}

TEST(BigFibonacci, SmallValues) {
  const char* expected[] = {"0", "1", "1", "2", "3", "5", "8", "13", "21", "34", "55"};
  for (std::uint64_t n = 0; n <= 10; ++n) EXPECT_EQ(fibonacci(n).toString(), expected[n]) << n;
  auto [f, g] = fibonacciPair(10);
  EXPECT_EQ(f.toString(), "55");
  EXPECT_EQ(g.toString(), "89");
}

TEST(BigFibonacci, FastDoublingMatchesTheIndependentAdditionChain) {
  // answer k = F(k+2): reference[k-1]
  const auto reference = fibtest::referenceAnswers(3000);
  for (std::uint64_t k = 1; k <= reference.size(); ++k)
    ASSERT_EQ(fibonacci(k + 2).toString(), reference[k - 1]) << "F(" << k + 2 << ")";
}

TEST(BigFibonacci, ValuesPastTwoToTheSixtyFour) {
  // F(93) still fits in a uint64; F(94) is the first that does not.
  EXPECT_EQ(fibonacci(93).toString(), "12200160415121876738");
  EXPECT_EQ(fibonacci(94).toString(), "19740274219868223167");
  EXPECT_EQ(fibonacci(100).toString(), "354224848179261915075");
  EXPECT_EQ(fibonacci(1002).toString(), fibtest::kF1002);
}

TEST(BigFibonacci, CursorWalksAndSeeks) {
  const auto reference = fibtest::referenceAnswers(1200);
  FibonacciCursor c;
  for (std::uint64_t k = 1; k <= reference.size(); ++k) {
    ASSERT_EQ(c.answer(), k);
    ASSERT_EQ(c.value().toString(), reference[k - 1]) << "answer " << k;
    c.advance();
  }
  for (std::uint64_t k : {1u, 2u, 91u, 92u, 93u, 999u, 1000u, 1200u}) {
    c.seek(k);
    ASSERT_EQ(c.value().toString(), reference[k - 1]) << "seek " << k;
    c.advance();
    if (k < reference.size()) {
      ASSERT_EQ(c.value().toString(), reference[k]) << "after seek " << k;
    }
  }
  EXPECT_THROW(c.seek(0), std::invalid_argument);
}

TEST(BigFibonacci, LargeIndexIsFastAndConsistent) {
  // Cassini: F(n) F(n+2) - F(n+1)^2 = (-1)^(n+1), at twice the default max_index.
  const auto t0 = std::chrono::steady_clock::now();
  auto [f, g] = fibonacciPair(200001);  // F(200001), F(200002)
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  BigDecimal h = f + g;  // F(200003)
  BigDecimal lhs = g * g;
  BigDecimal rhs = f * h;
  EXPECT_EQ(rhs, lhs + BigDecimal(1));  // n = 200001 is odd
  EXPECT_EQ(f.toString().size(), 41798u);
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(), 5000);
}
