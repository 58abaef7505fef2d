#pragma once
/// @file ReliabilitySupport.h
/// Helpers for the reliability suite (tests/reliability), on top of the e2e
/// harness (tests/support: HostProcess.h, TestClient.h, TempDir.h).
/// Standard library + POSIX only (no GoogleTest).
///
///  - Ending / endingName / probeConnect: how a TestClient connection ended,
///    and a one-shot connect probe.
///  - httpGet / scrapeMetrics / metricValue / parseMetrics / checkExposition:
///    the admin endpoint and the Prometheus text format.
///  - Sha256: FIPS 180-4 SHA-256 (for T02's "SHA-256 of received = sent").
///  - cpuShare / openFds: a process's CPU use over a window and its open fds,
///    from /proc/PID. (A host under a command such as `prlimit` is a
///    HostProcess with setCommandPrefix.)
///  - decimalLess / decimalAdd: compare and add big decimal integers (fibonacci).

#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "HostProcess.h"
#include "TempDir.h"
#include "TestClient.h"
#include "WaitUntil.h"

namespace protohost::reliability {

using Clock = std::chrono::steady_clock;
using e2e::IoError;
using e2e::HostProcess;
using e2e::TestClient;

inline long long msSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

using testsupport::waitUntil;

/// Prints the host's stderr when the test has failed by the time it goes out of scope.
struct DumpLogOnFailure {
  const HostProcess& host;
  ~DumpLogOnFailure() {
    if (::testing::Test::HasFailure())
      std::cerr << "---- host stderr ----\n" << host.stderrText() << "---------------------\n";
  }
};

// ---------------------------------------------------------------- clients

/// How a connection ended, as seen by TestClient::waitClosed.
using Ending = e2e::TestClient::Close;

inline const char* endingName(Ending e) {
  switch (e) {
    case Ending::Eof: return "EOF";
    case Ending::Reset: return "RST";
    case Ending::Timeout: return "timeout";
    case Ending::Error: return "error";
  }
  return "?";
}

/// Tries to connect once; returns 0 when connected (and closes it), else the errno.
inline int probeConnect(std::uint16_t port, std::chrono::milliseconds timeout = std::chrono::milliseconds(500)) {
  try {
    TestClient::Options o;
    o.timeout = timeout;
    TestClient c = TestClient::connect(port, o);
    return 0;
  } catch (const IoError& e) {
    return e.error();
  }
}

// ---------------------------------------------------------------- HTTP / metrics

struct HttpResponse {
  int status = 0;
  std::string body;
};

/// GET @p path from 127.0.0.1:@p port (HTTP/1.0, Connection: close). Throws IoError / runtime_error.
inline HttpResponse httpGet(std::uint16_t port, const std::string& path,
                            std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
  TestClient::Options o;
  o.timeout = timeout;
  TestClient c = TestClient::connect(port, o);
  c.sendAll("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  TestClient::Closed r = c.waitClosed(timeout);
  if (r.how != Ending::Eof)
    throw std::runtime_error("GET " + path + ": connection ended with " + endingName(r.how) + " after " +
                             std::to_string(r.data.size()) + " bytes");
  HttpResponse out;
  auto headEnd = r.data.find("\r\n\r\n");
  if (r.data.rfind("HTTP/1.", 0) != 0 || headEnd == std::string::npos)
    throw std::runtime_error("GET " + path + ": not an HTTP response: " + r.data.substr(0, 200));
  out.status = std::atoi(r.data.c_str() + 9);
  out.body = r.data.substr(headEnd + 4);
  return out;
}

/// The body of GET /metrics; throws unless the status is 200.
inline std::string scrapeMetrics(std::uint16_t adminPort) {
  HttpResponse r = httpGet(adminPort, "/metrics");
  if (r.status != 200) throw std::runtime_error("/metrics answered " + std::to_string(r.status));
  return r.body;
}

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
  /// name{k="v",...} with labels sorted: a key for comparing scrapes.
  std::string series() const {
    std::string s = name;
    if (!labels.empty()) {
      s += "{";
      bool first = true;
      for (const auto& [k, v] : labels) {
        s += (first ? "" : ",") + k + "=\"" + v + "\"";
        first = false;
      }
      s += "}";
    }
    return s;
  }
};

namespace detail {
inline bool isNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':'; }
inline bool isNameChar(char c) { return isNameStart(c) || std::isdigit(static_cast<unsigned char>(c)); }
inline bool validMetricName(std::string_view n) {
  if (n.empty() || !isNameStart(n[0])) return false;
  for (char c : n)
    if (!isNameChar(c)) return false;
  return true;
}
inline bool validLabelName(std::string_view n) {
  if (n.empty() || !(std::isalpha(static_cast<unsigned char>(n[0])) || n[0] == '_')) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}
inline bool parseValue(const std::string& t, double& v) {
  if (t == "+Inf" || t == "Inf") {
    v = HUGE_VAL;
    return true;
  }
  if (t == "-Inf") {
    v = -HUGE_VAL;
    return true;
  }
  if (t == "NaN") {
    v = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (t.empty()) return false;
  char* end = nullptr;
  errno = 0;
  v = std::strtod(t.c_str(), &end);
  return end && *end == '\0' && errno == 0;
}

/// Parses one sample line; on failure returns false with @p why set.
inline bool parseSampleLine(const std::string& line, Sample& s, std::string& why) {
  std::size_t i = 0;
  while (i < line.size() && isNameChar(line[i])) ++i;
  s.name = line.substr(0, i);
  if (!validMetricName(s.name)) {
    why = "bad metric name";
    return false;
  }
  s.labels.clear();
  if (i < line.size() && line[i] == '{') {
    ++i;
    for (;;) {
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      std::size_t k = i;
      while (i < line.size() && line[i] != '=') ++i;
      std::string key = line.substr(k, i - k);
      if (!validLabelName(key)) {
        why = "bad label name \"" + key + "\"";
        return false;
      }
      if (i + 1 >= line.size() || line[i + 1] != '"') {
        why = "label value not quoted";
        return false;
      }
      i += 2;
      std::string value;
      for (;;) {
        if (i >= line.size()) {
          why = "unterminated label value";
          return false;
        }
        char c = line[i++];
        if (c == '"') break;
        if (c == '\\') {
          if (i >= line.size()) {
            why = "bad escape";
            return false;
          }
          char e = line[i++];
          if (e == 'n') value.push_back('\n');
          else if (e == '\\' || e == '"') value.push_back(e);
          else {
            why = "bad escape \\" + std::string(1, e);
            return false;
          }
          continue;
        }
        if (c == '\n') {
          why = "raw newline in label value";
          return false;
        }
        value.push_back(c);
      }
      if (s.labels.count(key)) {
        why = "duplicate label " + key;
        return false;
      }
      s.labels[key] = value;
      if (i < line.size() && line[i] == ',') ++i;
      else if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      } else {
        why = "expected , or } after a label";
        return false;
      }
    }
  }
  if (i >= line.size() || line[i] != ' ') {
    why = "expected a space before the value";
    return false;
  }
  std::istringstream rest(line.substr(i + 1));
  std::string valueText, timestamp, extra;
  rest >> valueText >> timestamp >> extra;
  if (!parseValue(valueText, s.value)) {
    why = "bad value \"" + valueText + "\"";
    return false;
  }
  if (!timestamp.empty()) {
    char* end = nullptr;
    std::strtoll(timestamp.c_str(), &end, 10);
    if (!end || *end != '\0') {
      why = "bad timestamp";
      return false;
    }
  }
  if (!extra.empty()) {
    why = "trailing text";
    return false;
  }
  return true;
}
}  // namespace detail

/// Every sample of a text-format page (comments skipped; unparsable lines skipped).
inline std::vector<Sample> parseMetrics(const std::string& text) {
  std::vector<Sample> out;
  std::istringstream in(text);
  std::string line, why;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    if (detail::parseSampleLine(line, s, why)) out.push_back(std::move(s));
  }
  return out;
}

/// The value of the sample @p name whose labels include all of @p labels; nullopt if none.
inline std::optional<double> metricValue(const std::string& text, const std::string& name,
                                         const std::map<std::string, std::string>& labels = {}) {
  for (const auto& s : parseMetrics(text)) {
    if (s.name != name) continue;
    bool all = true;
    for (const auto& [k, v] : labels) {
      auto it = s.labels.find(k);
      all = all && it != s.labels.end() && it->second == v;
    }
    if (all) return s.value;
  }
  return std::nullopt;
}

/// Family name -> TYPE, from the "# TYPE" lines.
inline std::map<std::string, std::string> metricTypes(const std::string& text) {
  std::map<std::string, std::string> types;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) != 0) continue;
    std::istringstream f(line.substr(7));
    std::string name, type;
    f >> name >> type;
    types[name] = type;
  }
  return types;
}

/// Checks a page against the Prometheus text exposition format (0.0.4) and the
/// naming rules promtool lints: every sample's family has a # TYPE line before
/// its first sample (and at most one), names match [a-zA-Z_:][a-zA-Z0-9_:]*,
/// label names [a-zA-Z_][a-zA-Z0-9_]*, values parse, counters end in _total and
/// nothing else does, each family has HELP, a family's samples are contiguous,
/// no series repeats, and the page ends with a newline. Returns the problems.
inline std::vector<std::string> checkExposition(const std::string& text) {
  static const std::set<std::string> kTypes{"counter", "gauge", "histogram", "summary", "untyped"};
  std::vector<std::string> problems;
  if (text.empty()) return {"empty page"};
  if (text.back() != '\n') problems.push_back("the page does not end with a newline");
  std::map<std::string, std::string> typeOf;  // family -> type
  std::set<std::string> helped, finished, seenSeries;
  std::string current;  // family of the previous sample
  std::istringstream in(text);
  std::string line;
  int n = 0;
  auto problem = [&](const std::string& what) { problems.push_back("line " + std::to_string(n) + ": " + what + ": " + line); };
  auto familyOf = [&](const std::string& name) -> std::string {
    if (typeOf.count(name)) return name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string_view sv(name), suf(suffix);
      if (sv.size() > suf.size() && sv.substr(sv.size() - suf.size()) == suf) {
        std::string base(sv.substr(0, sv.size() - suf.size()));
        auto it = typeOf.find(base);
        if (it != typeOf.end() && (it->second == "histogram" || it->second == "summary")) return base;
      }
    }
    return {};
  };
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream f(line);
      std::string hash, kind, name, rest;
      f >> hash >> kind >> name;
      if (hash != "#" || (kind != "HELP" && kind != "TYPE")) continue;  // a plain comment
      if (!detail::validMetricName(name)) {
        problem("bad metric name in " + kind);
        continue;
      }
      if (kind == "HELP") {
        if (!helped.insert(name).second) problem("second HELP for " + name);
        std::getline(f, rest);
        if (rest.find_first_not_of(' ') == std::string::npos) problem("empty HELP text");
        continue;
      }
      f >> rest;
      if (!kTypes.count(rest)) problem("unknown type \"" + rest + "\"");
      if (typeOf.count(name)) problem("second TYPE for " + name);
      if (finished.count(name) || current == name) problem("TYPE after samples of " + name);
      typeOf[name] = rest;
      const bool total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
      if (rest == "counter" && !total) problem("counter " + name + " does not end in _total");
      if (rest != "counter" && total) problem("non-counter " + name + " ends in _total");
      continue;
    }
    Sample s;
    std::string why;
    if (!detail::parseSampleLine(line, s, why)) {
      problem(why);
      continue;
    }
    std::string family = familyOf(s.name);
    if (family.empty()) {
      problem("no # TYPE line before the first sample of " + s.name);
      family = s.name;
    }
    if (family != current) {
      if (finished.count(family)) problem("samples of " + family + " are not contiguous");
      if (!current.empty()) finished.insert(current);
      current = family;
    }
    if (!helped.count(family)) problem("no HELP for " + family);
    if (!seenSeries.insert(s.series()).second) problem("duplicate series " + s.series());
    if (typeOf[family] == "counter" && s.value < 0) problem("negative counter");
  }
  return problems;
}

// ---------------------------------------------------------------- SHA-256

/// Streaming SHA-256 (FIPS 180-4).
class Sha256 {
 public:
  Sha256() { reset(); }
  void reset() {
    h_ = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au, 0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
    length_ = 0;
    used_ = 0;
  }
  void update(std::string_view data) {
    length_ += data.size();
    while (!data.empty()) {
      std::size_t n = std::min<std::size_t>(64 - used_, data.size());
      std::memcpy(block_.data() + used_, data.data(), n);
      used_ += n;
      data.remove_prefix(n);
      if (used_ == 64) {
        compress(block_.data());
        used_ = 0;
      }
    }
  }
  /// Hex digest; the object must be reset() before reuse.
  std::string hex() {
    const std::uint64_t bits = length_ * 8;
    const unsigned char pad = 0x80;
    update(std::string_view(reinterpret_cast<const char*>(&pad), 1));
    const char zero[64] = {0};
    std::size_t zeros = (used_ <= 56) ? 56 - used_ : 120 - used_;
    update(std::string_view(zero, zeros));
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
    update(std::string_view(reinterpret_cast<const char*>(len), 8));
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (std::uint32_t w : h_)
      for (int s = 28; s >= 0; s -= 4) out.push_back(digits[(w >> s) & 0xf]);
    return out;
  }
  static std::string of(std::string_view data) {
    Sha256 h;
    h.update(data);
    return h.hex();
  }

 private:
  static std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
  void compress(const unsigned char* p) {
    static const std::uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    std::uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = (std::uint32_t(p[4 * i]) << 24) | (std::uint32_t(p[4 * i + 1]) << 16) | (std::uint32_t(p[4 * i + 2]) << 8) |
             std::uint32_t(p[4 * i + 3]);
    for (int i = 16; i < 64; ++i) {
      std::uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      std::uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    std::uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
    for (int i = 0; i < 64; ++i) {
      std::uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      std::uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h_[0] += a;
    h_[1] += b;
    h_[2] += c;
    h_[3] += d;
    h_[4] += e;
    h_[5] += f;
    h_[6] += g;
    h_[7] += h;
  }
  std::array<std::uint32_t, 8> h_{};
  std::array<unsigned char, 64> block_{};
  std::uint64_t length_ = 0;
  std::size_t used_ = 0;
};

// ---------------------------------------------------------------- processes

/// Share of one core @p pid used over the next @p window (0.25 = 25 %); -1 when unreadable.
inline double cpuShare(pid_t pid, std::chrono::milliseconds window) {
  const long long before = e2e::HostProcess::cpuTicksOf(pid);
  const auto begin = Clock::now();
  std::this_thread::sleep_for(window);
  const long long after = e2e::HostProcess::cpuTicksOf(pid);
  const double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  if (before < 0 || after < 0) return -1;
  return static_cast<double>(after - before) / static_cast<double>(::sysconf(_SC_CLK_TCK)) / seconds;
}

/// Count of open file descriptors of @p pid (entries of /proc/PID/fd); -1 when unreadable.
inline long openFds(pid_t pid) {
  std::error_code ec;
  long n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return ec ? -1 : n;
}

// ---------------------------------------------------------------- big decimals

/// a < b for non-negative decimal integers without leading zeros.
inline bool decimalLess(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return a.size() < b.size();
  return a < b;
}

/// a + b for non-negative decimal integers.
inline std::string decimalAdd(const std::string& a, const std::string& b) {
  std::string out;
  int carry = 0;
  for (std::size_t i = 0; i < std::max(a.size(), b.size()) || carry; ++i) {
    int d = carry;
    if (i < a.size()) d += a[a.size() - 1 - i] - '0';
    if (i < b.size()) d += b[b.size() - 1 - i] - '0';
    out.push_back(static_cast<char>('0' + d % 10));
    carry = d / 10;
  }
  return std::string(out.rbegin(), out.rend());
}

inline bool isDecimal(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

// ---------------------------------------------------------------- config

/// The [admin] section on a kernel-chosen loopback port.
inline const char* const kAdminSection = "\n[admin]\nlisten = tcp:0:interface=127.0.0.1\n";

/// Counts the lines of @p text matching @p re.
inline std::size_t countMatches(const std::string& text, const std::regex& re) {
  std::size_t n = 0;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (std::regex_search(l, re)) ++n;
  return n;
}

}  // namespace protohost::reliability

namespace protohost::reliability {

/// A private temporary directory (tests/support/TempDir.h).
using TempDir = protohost::testsupport::TempDir;

/// The stderr lines of @p host from index @p since on.
inline std::vector<std::string> logLinesSince(const e2e::HostProcess& host, std::size_t since) {
  std::vector<std::string> lines;
  std::istringstream in(host.stderrText());
  std::size_t i = 0;
  for (std::string l; std::getline(in, l); ++i)
    if (i >= since) lines.push_back(l);
  return lines;
}

}  // namespace protohost::reliability
