#pragma once
// Helpers for the weblog unit tests: a scratch directory, a writer that keeps
// its file descriptor across renames (like a web server), an incremental expat
// parser for the <hits> stream, and a FactoryContext on a ManualReactor.

#include <expat.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protohost/ConfigView.h"
#include "protohost/Factory.h"
#include "protohost/testing/ManualReactor.h"
#include "protohost/testing/MemoryTransport.h"
#include "StreamingExpat.h"
#include "TempDir.h"

namespace weblogtest {

/// A fresh directory under $TMPDIR (or /tmp), removed at scope exit (tests/support/TempDir.h).
using TempDir = protohost::testsupport::TempDir;

/// Appends with one write(2) per call through a descriptor opened once, the way
/// a web server writes its access log (it keeps writing to a renamed file).
class Writer {
 public:
  explicit Writer(const std::string& path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error("open " + path + " failed");
  }
  ~Writer() {
    if (fd_ >= 0) ::close(fd_);
  }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  void write(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::write(fd_, data.data(), data.size());
      if (n <= 0) throw std::runtime_error("write failed");
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
};

/// Opens, appends once, closes.
inline void appendFile(const std::string& path, std::string_view data) { Writer(path).write(data); }

/// One element inside <hits>, attributes in document order, values as expat decoded them.
struct Element {
  std::string name;
  std::vector<std::pair<std::string, std::string>> attributes;

  std::string attr(const std::string& key) const {
    for (const auto& [k, v] : attributes)
      if (k == key) return v;
    return "<missing>";
  }
};

/// Feeds a byte stream, in whatever pieces it comes, to expat as one endless
/// document and records the root and its child elements. Any well-formedness
/// error is kept in error().
class HitStreamParser {
 public:
  HitStreamParser() : parser_(protohost::testsupport::createStreamingParser()) {
    XML_SetUserData(parser_, this);
    XML_SetElementHandler(parser_, &HitStreamParser::onStart, &HitStreamParser::onEnd);
    XML_SetCharacterDataHandler(parser_, &HitStreamParser::onText);
  }
  ~HitStreamParser() { XML_ParserFree(parser_); }
  HitStreamParser(const HitStreamParser&) = delete;
  HitStreamParser& operator=(const HitStreamParser&) = delete;

  /// Returns false once the stream is not well-formed.
  bool feed(std::string_view data) {
    if (!error_.empty()) return false;
    if (XML_Parse(parser_, data.data(), static_cast<int>(data.size()), XML_FALSE) == XML_STATUS_ERROR) {
      error_ = std::string(XML_ErrorString(XML_GetErrorCode(parser_))) + " at byte " +
               std::to_string(XML_GetCurrentByteIndex(parser_));
      return false;
    }
    return true;
  }
  /// Feeds @p data in pieces of @p chunk bytes.
  bool feedInChunks(std::string_view data, std::size_t chunk) {
    while (!data.empty()) {
      std::size_t n = std::min(chunk, data.size());
      if (!feed(data.substr(0, n))) return false;
      data.remove_prefix(n);
    }
    return true;
  }

  const std::string& error() const { return error_; }
  const std::string& root() const { return root_; }
  const std::vector<Element>& elements() const { return elements_; }
  /// Character data between elements (the server sends none).
  const std::string& text() const { return text_; }
  bool rootClosed() const { return rootClosed_; }

 private:
  static void onStart(void* self, const XML_Char* name, const XML_Char** atts) {
    auto* p = static_cast<HitStreamParser*>(self);
    if (p->depth_++ == 0) {
      p->root_ = name;
      return;
    }
    Element e;
    e.name = name;
    for (int i = 0; atts[i]; i += 2) e.attributes.emplace_back(atts[i], atts[i + 1]);
    p->elements_.push_back(std::move(e));
  }
  static void onEnd(void* self, const XML_Char*) {
    auto* p = static_cast<HitStreamParser*>(self);
    if (--p->depth_ == 0) p->rootClosed_ = true;
  }
  static void onText(void* self, const XML_Char* s, int len) {
    static_cast<HitStreamParser*>(self)->text_.append(s, static_cast<std::size_t>(len));
  }

  XML_Parser parser_;
  int depth_ = 0;
  std::string root_;
  std::vector<Element> elements_;
  std::string text_;
  std::string error_;
  bool rootClosed_ = false;
};

/// Parses a complete byte string; fails the test on a well-formedness error.
inline std::vector<Element> parseHits(std::string_view stream, std::size_t chunk = SIZE_MAX) {
  HitStreamParser p;
  bool ok = p.feedInChunks(stream, std::max<std::size_t>(chunk, 1));
  EXPECT_TRUE(ok) << p.error();
  EXPECT_EQ(p.root(), "hits");
  EXPECT_EQ(p.text(), "");
  return p.elements();
}

/// The FactoryContext the host would lend, on a test reactor.
class TestContext : public protohost::FactoryContext {
 public:
  explicit TestContext(protohost::Reactor& reactor) : reactor_(reactor) {}
  const std::string& listenerName() const override { return name_; }
  protohost::Reactor& reactor() override { return reactor_; }
  protohost::Logger& logger() override { return logger_; }
  protohost::FactoryHandle handle() override { return {}; }
  protohost::testing::MemoryLogger& memoryLogger() { return logger_; }

  std::size_t count(protohost::LogLevel level, std::string_view containing = {}) const {
    std::size_t n = 0;
    for (const auto& l : logger_.lines)
      if (l.level == level && l.text.find(containing) != std::string::npos) ++n;
    return n;
  }

 private:
  std::string name_ = "weblog";
  protohost::Reactor& reactor_;
  protohost::testing::MemoryLogger logger_;
};

/// A [listener.weblog] section as the host would pass it (lines 11, 12, ...).
inline protohost::ConfigView makeConfig(const std::map<std::string, std::string>& keys,
                                        const std::string& baseDir = "/etc/protohost") {
  std::map<std::string, protohost::ConfigView::Entry> entries;
  int line = 11;
  for (const auto& [k, v] : keys) entries[k] = {v, line++};
  return protohost::ConfigView("host.ini", "listener.weblog", 10, baseDir, entries);
}

// The field notes' test vectors.
inline const std::string kClfLine =
    "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326";
inline const std::string kClfHit =
    "<hit ip=\"127.0.0.1\" timestamp=\"10/Oct/2000:13:55:36 -0700\" request=\"GET /apache_pb.gif HTTP/1.0\" "
    "status=\"200\" bytes=\"2326\" referrer=\"-\" agent=\"-\"/>";
inline const std::string kCombinedLine =
    "10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] \"GET /a?x=1&y=<2> HTTP/1.1\" 404 - \"-\" \"curl\"";
inline const std::string kCombinedHit =
    "<hit ip=\"10.0.0.1\" timestamp=\"01/Jan/2024:00:00:00 +0000\" request=\"GET /a?x=1&amp;y=&lt;2&gt; HTTP/1.1\" "
    "status=\"404\" bytes=\"-\" referrer=\"-\" agent=\"curl\"/>";

/// A valid Combined line whose request path carries @p n (to check order and exactly-once).
inline std::string numberedLine(int n) {
  return "192.0.2.1 - - [01/Jan/2024:00:00:00 +0000] \"GET /" + std::to_string(n) +
         " HTTP/1.1\" 200 1 \"-\" \"test\"";
}
inline std::string numberedRequest(int n) { return "GET /" + std::to_string(n) + " HTTP/1.1"; }

}  // namespace weblogtest
