#pragma once
/// @file PluginE2eSupport.h
/// Helpers for the end-to-end tests of the weblog and fibonacci plugins
/// (tests/plugins/e2e/), on top of tests/support/HostProcess.h and TestClient.h.
///
///  - waitUntil: a condition wait by polling, with a timeout.
///  - TempDir: a private directory that outlives one HostProcess (state files
///    shared by several host runs).
///  - Access-log writing: clfLine() makes a unique Combined Log Format line per id.
///  - HitStream: an expat parser fed incrementally with whatever recv returned;
///    records every <hit/> and <none/> and the first well-formedness error.
///  - WeblogClient: one push or poll client on its own thread, feeding a HitStream.
///  - Fibonacci: FibGenerator (exact big-integer answers, base 10^9 limbs, the
///    test's own addition), crc32 / fibStateLine (the plugin's state record),
///    LineClient (CRLF answer lines over a socket that may be reset).
///  - httpGet: one HTTP/1.1 GET against the host's [admin] endpoint.

#include <arpa/inet.h>
#include <expat.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "HostProcess.h"
#include "StreamingExpat.h"
#include "TestClient.h"
#include "TempDir.h"

namespace protohost::e2e::plugintest {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// Polls @p pred every @p step until it holds or @p timeout passes; returns its last value.
template <class Pred>
bool waitUntil(Pred pred, std::chrono::milliseconds timeout, std::chrono::milliseconds step = 10ms) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(step);
  }
}

/// Counts the host's stderr lines (from index @p since) that match @p re.
inline std::size_t countLogLines(const HostProcess& host, const std::string& re, std::size_t since = 0) {
  std::regex r(re);
  std::istringstream in(host.stderrText());
  std::string line;
  std::size_t n = 0;
  for (std::size_t i = 0; std::getline(in, line); ++i)
    if (i >= since && std::regex_search(line, r)) ++n;
  return n;
}

/// A private temporary directory (tests/support/TempDir.h).
using TempDir = protohost::testsupport::TempDir;

// ---------------------------------------------------------------- files

/// open(O_WRONLY | O_APPEND | O_CREAT): how web servers write their access log.
inline int openAppend(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + path);
  return fd;
}

/// Writes all of @p data to @p fd (one write(2) when the kernel takes it all).
inline void writeAllFd(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::system_error(errno, std::generic_category(), "write");
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

inline std::string readWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void writeWholeFile(const std::string& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

// ---------------------------------------------------------------- weblog

/// The request of line @p id: "GET /hit/ID HTTP/1.1", or "GET /hit/ID?PAD HTTP/1.1".
inline std::string hitRequest(std::uint64_t id, std::string_view pad = {}) {
  std::string r = "GET /hit/" + std::to_string(id);
  if (!pad.empty()) {
    r += '?';
    r += pad;
  }
  return r + " HTTP/1.1";
}

/// One Combined Log Format line (with its '\n') whose request names @p id.
inline std::string clfLine(std::uint64_t id, std::string_view pad = {}, std::string_view agent = "pe2e/1.0",
                           std::string_view referrer = "http://example.com/") {
  std::string line = "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"" + hitRequest(id, pad) + "\" 200 " +
                     std::to_string(1000 + id % 1000) + " \"";
  line += referrer;
  line += "\" \"";
  line += agent;
  line += "\"\n";
  return line;
}

/// The id in a request "GET /hit/ID..." (nullopt for anything else).
inline std::optional<std::uint64_t> idOfRequest(std::string_view request) {
  constexpr std::string_view kPrefix = "GET /hit/";
  if (request.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  request.remove_prefix(kPrefix.size());
  std::uint64_t id = 0;
  std::size_t digits = 0;
  while (digits < request.size() && request[digits] >= '0' && request[digits] <= '9') {
    id = id * 10 + static_cast<std::uint64_t>(request[digits] - '0');
    ++digits;
  }
  if (digits == 0) return std::nullopt;
  return id;
}

/// One element of a weblog stream, as expat reported it.
struct StreamElement {
  enum class Kind { Hit, None };
  Kind kind = Kind::Hit;
  std::uint64_t id = 0;  ///< from the request attribute; 0 when it names no id
  std::map<std::string, std::string> attributes;  ///< only when attributes are kept
};

/// A weblog client's view of its stream: an expat parser fed with every chunk
/// as it arrives (XML_Parse with isFinal = false: the document never ends).
/// The first error (not well-formed, or an element the wire format does not
/// have) is kept and stops parsing.
class HitStream {
 public:
  explicit HitStream(bool keepAttributes) : keep_(keepAttributes) {
    parser_ = testsupport::createStreamingParser();  // reports each element as soon as it is complete
    XML_SetUserData(parser_, this);
    XML_SetElementHandler(parser_, &HitStream::onStart, &HitStream::onEnd);
    XML_SetCharacterDataHandler(parser_, &HitStream::onText);
  }
  ~HitStream() { XML_ParserFree(parser_); }
  HitStream(const HitStream&) = delete;
  HitStream& operator=(const HitStream&) = delete;

  /// Feeds one chunk; false once the stream is in error.
  bool feed(std::string_view chunk) {
    if (!error_.empty()) return false;
    bytes_ += chunk.size();
    if (XML_Parse(parser_, chunk.data(), static_cast<int>(chunk.size()), XML_FALSE) != XML_STATUS_OK &&
        error_.empty()) {
      error_ = std::string("expat: ") + XML_ErrorString(XML_GetErrorCode(parser_)) + " at byte " +
               std::to_string(XML_GetCurrentByteIndex(parser_)) + " (line " +
               std::to_string(XML_GetCurrentLineNumber(parser_)) + ", column " +
               std::to_string(XML_GetCurrentColumnNumber(parser_)) + ")";
    }
    return error_.empty();
  }

  const std::string& error() const { return error_; }
  bool rootSeen() const { return rootSeen_; }
  std::uint64_t bytes() const { return bytes_; }
  const std::vector<StreamElement>& elements() const { return elements_; }
  std::size_t hitCount() const { return hits_; }
  std::size_t noneCount() const { return nones_; }

 private:
  static void XMLCALL onStart(void* self, const XML_Char* name, const XML_Char** attrs) {
    static_cast<HitStream*>(self)->start(name, attrs);
  }
  static void XMLCALL onEnd(void* self, const XML_Char*) { --static_cast<HitStream*>(self)->depth_; }
  static void XMLCALL onText(void* self, const XML_Char*, int) {
    auto* s = static_cast<HitStream*>(self);
    s->fail("character data in the stream (the wire format has none)");
  }

  void start(std::string_view name, const XML_Char** attrs) {
    const int depth = depth_++;
    if (depth == 0) {
      if (name != "hits") fail("root element <" + std::string(name) + ">, expected <hits>");
      rootSeen_ = true;
      return;
    }
    if (depth != 1) {
      fail("nested element <" + std::string(name) + ">");
      return;
    }
    StreamElement e;
    if (name == "none") {
      e.kind = StreamElement::Kind::None;
      if (attrs && attrs[0]) fail("<none/> with attributes");
      ++nones_;
      elements_.push_back(std::move(e));
      return;
    }
    if (name != "hit") {
      fail("unexpected element <" + std::string(name) + ">");
      return;
    }
    static constexpr const char* kOrder[] = {"ip", "timestamp", "request", "status", "bytes", "referrer", "agent"};
    std::size_t i = 0;
    for (; attrs && attrs[2 * i]; ++i) {
      std::string_view key = attrs[2 * i];
      std::string_view value = attrs[2 * i + 1];
      if (i >= std::size(kOrder) || key != kOrder[i]) {
        fail("attribute " + std::string(key) + " out of the documented order");
        return;
      }
      if (key == "request") {
        if (auto id = idOfRequest(value)) e.id = *id;
      }
      if (keep_) e.attributes.emplace(std::string(key), std::string(value));
    }
    if (i != std::size(kOrder)) fail("<hit/> with " + std::to_string(i) + " attributes, expected 7");
    ++hits_;
    elements_.push_back(std::move(e));
  }

  void fail(const std::string& what) {
    if (error_.empty()) error_ = "stream: " + what + " after " + std::to_string(bytes_) + " bytes";
    XML_StopParser(parser_, XML_FALSE);
  }

  XML_Parser parser_ = nullptr;
  bool keep_;
  int depth_ = 0;
  bool rootSeen_ = false;
  std::uint64_t bytes_ = 0;
  std::size_t hits_ = 0;
  std::size_t nones_ = 0;
  std::vector<StreamElement> elements_;
  std::string error_;
};

/// One weblog client on its own thread: reads (and, in poll mode, sends the
/// request pieces in rotation every pollEvery) until stop() or until the
/// connection ends, feeding every received chunk to its HitStream.
class WeblogClient {
 public:
  struct Options {
    bool poll = false;
    /// Poll mode: sent in rotation, one piece per tick (e.g. {"NE", "W?\n"} splits a request).
    std::vector<std::string> requestPieces{"NEW?"};
    std::chrono::milliseconds pollEvery{30};
    bool keepAttributes = true;
  };

  /// A snapshot of what the client has seen so far.
  struct State {
    bool rootSeen = false;
    std::vector<std::uint64_t> ids;  ///< ids of the <hit/> elements, in arrival order
    std::size_t hits = 0;
    std::size_t nones = 0;
    std::uint64_t bytes = 0;
    std::uint64_t piecesSent = 0;
    std::string xmlError;
    bool closed = false;      ///< the connection ended (EOF or error)
    std::string closeReason;  ///< "EOF" or the errno text
  };

  WeblogClient(std::string name, std::uint16_t port, Options options)
      : name_(std::move(name)),
        options_(std::move(options)),
        client_(TestClient::connect(port, TestClient::Options{5s, 0, 0})),
        stream_(options_.keepAttributes) {
    int one = 1;
    ::setsockopt(client_.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    thread_ = std::thread([this] { run(); });
  }
  ~WeblogClient() { stop(); }
  WeblogClient(const WeblogClient&) = delete;
  WeblogClient& operator=(const WeblogClient&) = delete;

  const std::string& name() const { return name_; }

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  State state() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return state_;
  }

  /// Waits until @p pred(state) holds; false on timeout.
  bool waitFor(const std::function<bool(const State&)>& pred, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return pred(state_); });
  }
  bool waitForId(std::uint64_t id, std::chrono::milliseconds timeout) {
    return waitFor([id](const State& s) { return !s.ids.empty() && s.ids.back() >= id; }, timeout);
  }
  bool waitForRoot(std::chrono::milliseconds timeout) {
    return waitFor([](const State& s) { return s.rootSeen || s.closed; }, timeout) && state().rootSeen;
  }

  /// The elements received (with attributes when kept). Call after stop() or under quiescence.
  std::vector<StreamElement> elements() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stream_.elements();
  }

 private:
  void run() {
    std::string buf(256 * 1024, '\0');
    auto nextSend = Clock::now();
    std::size_t piece = 0;
    while (!stop_) {
      int waitMs = 50;
      if (options_.poll) {
        auto now = Clock::now();
        if (now >= nextSend) {
          const std::string& p = options_.requestPieces[piece++ % options_.requestPieces.size()];
          if (client_.sendSome(p.data(), p.size()) != static_cast<ssize_t>(p.size())) {
            end(std::string("send: ") + std::strerror(errno));
            return;
          }
          {
            std::lock_guard<std::mutex> lock(mutex_);
            ++state_.piecesSent;
          }
          nextSend = now + options_.pollEvery;
        }
        waitMs = static_cast<int>(
            std::clamp<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(nextSend - now).count(), 1, 50));
      }
      pollfd p{client_.fd(), POLLIN, 0};
      int r = ::poll(&p, 1, waitMs);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) continue;
      ssize_t n = ::recv(client_.fd(), buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      if (n <= 0) {
        end(n == 0 ? std::string("EOF") : std::string(std::strerror(errno)));
        return;
      }
      std::lock_guard<std::mutex> lock(mutex_);
      const std::size_t before = stream_.elements().size();
      stream_.feed(std::string_view(buf.data(), static_cast<std::size_t>(n)));
      const auto& els = stream_.elements();
      for (std::size_t i = before; i < els.size(); ++i)
        if (els[i].kind == StreamElement::Kind::Hit) state_.ids.push_back(els[i].id);
      state_.rootSeen = stream_.rootSeen();
      state_.hits = stream_.hitCount();
      state_.nones = stream_.noneCount();
      state_.bytes = stream_.bytes();
      if (state_.xmlError.empty()) state_.xmlError = stream_.error();
      cv_.notify_all();
    }
  }

  void end(std::string reason) {
    std::lock_guard<std::mutex> lock(mutex_);
    state_.closed = true;
    state_.closeReason = std::move(reason);
    cv_.notify_all();
  }

  const std::string name_;
  const Options options_;
  TestClient client_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  HitStream stream_;
  State state_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// "" when @p ids is exactly first, first+1, ..., last; else a description of the first difference.
inline std::string checkConsecutive(const std::vector<std::uint64_t>& ids, std::uint64_t first, std::uint64_t last) {
  if (ids.empty()) return "no hits at all (expected " + std::to_string(first) + ".." + std::to_string(last) + ")";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::uint64_t want = first + i;
    if (ids[i] != want)
      return "hit #" + std::to_string(i) + " is id " + std::to_string(ids[i]) + ", expected " + std::to_string(want) +
             (i > 0 ? " (previous " + std::to_string(ids[i - 1]) + ")" : std::string());
  }
  if (ids.back() != last)
    return "stream ends at id " + std::to_string(ids.back()) + ", expected up to " + std::to_string(last);
  return {};
}

/// Appends lines next, next+1, ... to @p fd one at a time (each followed by a
/// wait of up to @p perLine) until every client has received at least one hit;
/// false when @p maxLines did not suffice.
///
/// Why: with threads > 1 the weblog plugin sends <hits> *before* it subscribes
/// the connection to new hits (WeblogProtocol::connectionMade), so a line written
/// right after a client saw <hits> can be published before that client is
/// subscribed, and the client never gets it. Tests that need "every line from
/// here on" synchronise on a first received hit instead of on <hits>.
template <class Clients>
bool syncOnFirstHit(int fd, std::uint64_t& next, const Clients& clients, std::size_t maxLines = 40,
                    std::chrono::milliseconds perLine = 2s) {
  for (std::size_t n = 0; n < maxLines; ++n) {
    writeAllFd(fd, clfLine(next++));
    bool all = true;
    for (const auto& c : clients)
      all = c->waitFor([](const WeblogClient::State& s) { return !s.ids.empty() || s.closed; }, perLine) && all;
    if (all) {
      for (const auto& c : clients)
        if (c->state().ids.empty()) return false;
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------- fibonacci

/// Exact Fibonacci answers with the test's own big-number addition (base 10^9
/// limbs, least significant first). Answer k is F(k+2), F(1) = F(2) = 1: the
/// generator starts at answer 1 = 2.
class FibGenerator {
 public:
  FibGenerator() : prev_{1}, cur_{2} {}
  std::uint64_t index() const { return index_; }
  std::string text() const {
    std::string s = std::to_string(cur_.back());
    char buf[16];
    for (std::size_t i = cur_.size() - 1; i-- > 0;) {
      std::snprintf(buf, sizeof buf, "%09u", cur_[i]);
      s += buf;
    }
    return s;
  }
  void advance() {
    std::vector<std::uint32_t> next(std::max(prev_.size(), cur_.size()) + 1, 0);
    std::uint32_t carry = 0;
    for (std::size_t i = 0; i + 1 < next.size(); ++i) {
      std::uint32_t v = carry + (i < prev_.size() ? prev_[i] : 0) + (i < cur_.size() ? cur_[i] : 0);
      carry = v >= kBase ? 1 : 0;
      next[i] = v - carry * kBase;
    }
    next.back() = carry;
    while (next.size() > 1 && next.back() == 0) next.pop_back();
    prev_ = std::move(cur_);
    cur_ = std::move(next);
    ++index_;
  }
  /// Advances to answer @p k (>= index()).
  void advanceTo(std::uint64_t k) {
    while (index_ < k) advance();
  }

 private:
  static constexpr std::uint32_t kBase = 1000000000u;
  std::vector<std::uint32_t> prev_, cur_;
  std::uint64_t index_ = 1;
};

/// Answers 1..n as decimal strings ([0] is answer 1).
inline std::vector<std::string> fibAnswers(std::size_t n) {
  std::vector<std::string> out;
  out.reserve(n);
  FibGenerator g;
  for (std::size_t k = 1; k <= n; ++k) {
    out.push_back(g.text());
    g.advance();
  }
  return out;
}

/// Numeric order of two decimal strings without leading zeros.
inline bool decimalLess(std::string_view a, std::string_view b) {
  return a.size() != b.size() ? a.size() < b.size() : a < b;
}

inline bool allDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

/// The answers of a series of host lives on one state file (T28): maps every
/// answer to its index by walking the sequence upwards through the answers in
/// numeric order, and counts what must never happen: a number handed out twice
/// (within a life, or at or below the highest of an earlier life), a line of
/// digits that is not an answer, a connection's answers out of order.
class FibLedger {
 public:
  struct Life {
    std::size_t answers = 0;
    std::uint64_t min = UINT64_MAX, max = 0;  ///< answer indices of this life (min > max: none)
    std::size_t repeats = 0;
    std::size_t notAnswers = 0;
    std::size_t outOfOrder = 0;
    std::vector<std::string> problems;  ///< the first few, for messages
    bool clean() const { return repeats == 0 && notAnswers == 0 && outOfOrder == 0; }
  };

  /// Adds one life: @p perConnection[i] are the digit lines connection i got, in order.
  Life add(const std::vector<std::vector<std::string>>& perConnection) {
    Life life;
    struct Item {
      const std::string* text;
      std::size_t conn, pos;
    };
    std::vector<Item> items;
    for (std::size_t i = 0; i < perConnection.size(); ++i)
      for (std::size_t p = 0; p < perConnection[i].size(); ++p) items.push_back({&perConnection[i][p], i, p});
    std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return decimalLess(*a.text, *b.text); });
    std::vector<std::vector<std::uint64_t>> indices(perConnection.size());
    for (std::size_t i = 0; i < perConnection.size(); ++i) indices[i].assign(perConnection[i].size(), 0);
    const std::uint64_t before = highest_;
    std::string genText = gen_.text();
    auto problem = [&](std::string what) {
      if (life.problems.size() < 5) life.problems.push_back(std::move(what));
    };
    for (std::size_t n = 0; n < items.size(); ++n) {
      const std::string& a = *items[n].text;
      if (n > 0 && *items[n - 1].text == a) {
        ++life.repeats;
        problem("handed out twice in one life: " + a.substr(0, 60));
        continue;
      }
      if (decimalLess(a, genText)) {  // the generator is at the highest answer of earlier lives
        ++life.repeats;
        problem("at or below an answer of an earlier life (highest " + std::to_string(before) + "): " + a.substr(0, 60));
        continue;
      }
      while (decimalLess(genText, a)) {
        gen_.advance();
        genText = gen_.text();
      }
      if (genText != a) {
        ++life.notAnswers;
        problem("not a number of the sequence: " + a.substr(0, 60));
        continue;
      }
      if (gen_.index() <= before) {
        ++life.repeats;
        problem("answer " + std::to_string(gen_.index()) + " was handed out in an earlier life");
        continue;
      }
      indices[items[n].conn][items[n].pos] = gen_.index();
      life.min = std::min(life.min, gen_.index());
      life.max = std::max(life.max, gen_.index());
      ++life.answers;
    }
    for (std::size_t i = 0; i < indices.size(); ++i)
      for (std::size_t p = 1; p < indices[i].size(); ++p)
        if (indices[i][p - 1] != 0 && indices[i][p] != 0 && indices[i][p - 1] >= indices[i][p]) {
          ++life.outOfOrder;
          problem("connection " + std::to_string(i) + ": answer " + std::to_string(indices[i][p]) + " after " +
                  std::to_string(indices[i][p - 1]));
        }
    highest_ = std::max(highest_, life.max == 0 ? highest_ : life.max);
    return life;
  }

  /// The highest answer index of all lives so far (0: none).
  std::uint64_t highest() const { return highest_; }

 private:
  FibGenerator gen_;  // at answer highest_ (or answer 1)
  std::uint64_t highest_ = 0;
};

/// CRC-32 (IEEE, as zlib's crc32), the checksum of the fibonacci state record.
inline std::uint32_t crc32(std::string_view data) {
  std::uint32_t c = 0xffffffffu;
  for (char ch : data) {
    c ^= static_cast<unsigned char>(ch);
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xedb88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xffffffffu;
}

/// The state record "protohost-fibonacci v1 next=N crc32=XXXXXXXX\n" (plugins/fibonacci/README.md).
inline std::string fibStateLine(std::uint64_t next, std::optional<std::uint32_t> crcOverride = std::nullopt) {
  std::string body = "protohost-fibonacci v1 next=" + std::to_string(next);
  char hex[16];
  std::snprintf(hex, sizeof hex, "%08x", crcOverride ? *crcOverride : crc32(body));
  return body + " crc32=" + hex + "\n";
}

/// One record of the v2 state file (a slot's line, with "\n"; StateFormat.h).
inline std::string fibSlotLine(std::uint64_t slot, std::uint64_t gen, std::uint64_t next) {
  std::string body = "protohost-fibonacci v2 slot=" + std::to_string(slot) + " gen=" + std::to_string(gen) +
                     " next=" + std::to_string(next);
  char hex[16];
  std::snprintf(hex, sizeof hex, "%08x", crc32(body));
  return body + " crc32=" + hex + "\n";
}

/// The fibonacci state file's ceiling, checked independently of the plugin's code: a v1
/// line, or the v2 file (8192 bytes, two 4096-byte slots, each unused or one record line then
/// zero bytes; the valid slot with the highest generation counts). nullopt when not valid.
inline std::optional<std::uint64_t> parseFibState(const std::string& content) {
  constexpr std::size_t kSlot = 4096;
  if (content.size() == 2 * kSlot) {
    std::optional<std::uint64_t> next;
    std::uint64_t bestGen = 0;
    for (std::size_t i = 0; i < 2; ++i) {
      const std::string slot = content.substr(i * kSlot, kSlot);
      const std::size_t eol = slot.find('\n');
      if (eol == std::string::npos || slot.find_first_not_of('\0', eol + 1) != std::string::npos) continue;
      std::uint64_t gen = 0, value = 0;
      char crc[9] = {};
      unsigned long long s = 0;
      if (std::sscanf(slot.c_str(), "protohost-fibonacci v2 slot=%llu gen=%" SCNu64 " next=%" SCNu64 " crc32=%8s", &s,
                      &gen, &value, crc) != 4)
        continue;
      if (s != i || value == 0 || fibSlotLine(s, gen, value) != slot.substr(0, eol + 1)) continue;
      if (!next || gen > bestGen) {
        next = value;
        bestGen = gen;
      }
    }
    return next;
  }
  constexpr std::string_view kPrefix = "protohost-fibonacci v1 next=";
  if (content.rfind(kPrefix, 0) != 0 || content.empty() || content.back() != '\n') return std::nullopt;
  auto crcAt = content.find(" crc32=");
  if (crcAt == std::string::npos) return std::nullopt;
  std::string digits = content.substr(kPrefix.size(), crcAt - kPrefix.size());
  if (!allDigits(digits)) return std::nullopt;
  std::uint64_t next = std::stoull(digits);
  if (fibStateLine(next) != content) return std::nullopt;
  return next;
}

/// A fibonacci client: requests out, CRLF-terminated answer lines in.
/// Never throws for a closed or reset connection: readLine reports it.
class LineClient {
 public:
  explicit LineClient(std::uint16_t port, std::chrono::milliseconds timeout = 10s)
      : client_(TestClient::connect(port, TestClient::Options{timeout, 0, 0})) {
    int one = 1;
    ::setsockopt(client_.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }

  enum class Status { Line, Eof, Error, Timeout };
  struct Read {
    Status status = Status::Timeout;
    std::string line;  ///< without "\r\n" (Status::Line)
    int error = 0;
  };

  /// false when the send failed (connection reset or closed).
  bool send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = client_.sendSome(data.data(), data.size());
      if (n <= 0) {
        error_ = errno;
        return false;
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  /// The next "\r\n"-terminated line. A line without its "\r" is an error of the
  /// wire format and is returned with the '\r' missing, for the test to see.
  Read readLine() {
    Read r;
    for (;;) {
      auto nl = buffer_.find('\n', scanned_);
      if (nl != std::string::npos) {
        r.status = Status::Line;
        r.line = buffer_.substr(0, nl);
        if (!r.line.empty() && r.line.back() == '\r') r.line.pop_back();
        else r.line += "<missing CR>";
        buffer_.erase(0, nl + 1);
        scanned_ = 0;
        return r;
      }
      scanned_ = buffer_.size();
      char buf[65536];
      ssize_t n = client_.recvSome(buf, sizeof buf);
      if (n > 0) {
        buffer_.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) {
        r.status = Status::Eof;
      } else {
        r.error = errno;
        r.status = errno == EAGAIN || errno == EWOULDBLOCK ? Status::Timeout : Status::Error;
      }
      return r;
    }
  }

  /// Bytes received after the last complete line (an answer cut by a kill).
  const std::string& partial() const { return buffer_; }
  int lastSendError() const { return error_; }
  TestClient& raw() { return client_; }

 private:
  TestClient client_;
  std::string buffer_;
  std::size_t scanned_ = 0;
  int error_ = 0;
};

/// Sends "NEXT\n" @p n times (at most @p window in flight) and returns the answer lines.
/// Connections that keep a window of "NEXT" requests in flight against one
/// fibonacci listener until the host goes away (or @p most answers each), and
/// keep the digit lines each one got, in order. ERR lines are counted;
/// anything else is recorded in odd (one per connection).
struct FibHammer {
  std::vector<std::vector<std::string>> answers;
  std::vector<std::string> odd;
  std::atomic<std::size_t> errLines{0};
  std::vector<std::thread> threads;

  void start(std::uint16_t port, std::size_t connections, std::size_t window, std::size_t most = SIZE_MAX) {
    answers.assign(connections, {});
    odd.assign(connections, {});
    // Every connection first, then the requests: a host killed at its first durable write (T28
    // injects SIGKILL there, right after the first requests) never refuses a client that was
    // still about to connect.
    std::vector<std::unique_ptr<LineClient>> clients(connections);
    for (std::size_t i = 0; i < connections; ++i) {
      try {
        clients[i] = std::make_unique<LineClient>(port);
      } catch (const std::exception& e) {
        odd[i] = std::string("client: ") + e.what();
      }
    }
    for (std::size_t i = 0; i < connections; ++i)
      threads.emplace_back([this, window, most, i, client = std::move(clients[i])] {
        if (!client) return;
        try {
          LineClient& c = *client;
          std::size_t sent = 0, got = 0;
          while (got < most) {
            std::string batch;
            while (sent < most && sent - got < window) {
              batch += "NEXT\n";
              ++sent;
            }
            if (!batch.empty()) (void)c.send(batch);  // reset by a dying host: read what arrived
            auto r = c.readLine();
            if (r.status != LineClient::Status::Line) return;  // the host went away
            ++got;
            if (allDigits(r.line)) answers[i].push_back(std::move(r.line));
            else if (r.line.rfind("ERR ", 0) == 0) ++errLines;
            else if (odd[i].empty()) odd[i] = r.line.substr(0, 80);
          }
        } catch (const std::exception& e) {
          if (odd[i].empty()) odd[i] = std::string("client: ") + e.what();
        }
      });
  }
  void join() {
    for (auto& t : threads) t.join();
    threads.clear();
  }
};

inline std::vector<std::string> requestAnswers(std::uint16_t port, std::size_t n, std::size_t window = 1) {
  LineClient c(port);
  std::vector<std::string> out;
  std::size_t sent = 0;
  while (out.size() < n) {
    std::string batch;
    while (sent < n && sent - out.size() < window) {
      batch += "NEXT\n";
      ++sent;
    }
    if (!batch.empty() && !c.send(batch)) break;
    auto r = c.readLine();
    if (r.status != LineClient::Status::Line) break;
    out.push_back(std::move(r.line));
  }
  return out;
}

// ---------------------------------------------------------------- admin HTTP

struct HttpReply {
  int status = 0;  ///< 0: no valid answer
  std::string body;
};

/// Waits until 127.0.0.1:@p port accepts a connection (e.g. HAProxy started as a child).
inline bool waitAccepting(std::uint16_t port, std::chrono::milliseconds timeout) {
  return waitUntil(
      [&] {
        try {
          TestClient::connect(port, TestClient::Options{1s});
          return true;
        } catch (const IoError&) {
          return false;
        }
      },
      timeout);
}

/// GET @p path from 127.0.0.1:@p port (the host's [admin] endpoint).
inline HttpReply httpGet(std::uint16_t port, const std::string& path) {
  HttpReply reply;
  try {
    TestClient c = TestClient::connect(port, TestClient::Options{5s, 0, 0});
    c.sendAll("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    std::string all = c.readUntilEof();
    if (all.rfind("HTTP/1.", 0) != 0 || all.size() < 12) return reply;
    reply.status = std::atoi(all.c_str() + 9);
    auto headEnd = all.find("\r\n\r\n");
    if (headEnd != std::string::npos) reply.body = all.substr(headEnd + 4);
  } catch (const IoError&) {
  }
  return reply;
}

}  // namespace protohost::e2e::plugintest
