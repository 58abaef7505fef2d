#pragma once
// lookup: a read-through lookup service, the worked client example of
// docs/writing-a-plugin.md. A client sends "GET key" lines and gets one line
// back for each, in order:
//  - "VALUE text": the first line of the file ROOT/key, read on the host's
//    worker pool (Reactor::deferToThread), because file I/O may block;
//  - otherwise what the upstream server (upstream = tcp:HOST:PORT) answers to
//    "GET key", asked over one outbound connection per client (Reactor::connect),
//    opened at the first miss and kept;
//  - "ERROR reason" for a bad request, a full worker queue or a failed upstream.
// One request at a time: reading pauses until the answer is sent, and
// LineProtocol holds pipelined lines meanwhile.

#include <cctype>
#include <exception>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "protohost/LineProtocol.h"
#include "protohost/SimpleFactory.h"

namespace lookup {

struct Settings {
  std::string upstream;  // tcp:HOST:PORT[:timeout=MS]
  std::string root;      // the directory of local answers, one file per key
};

class LookupProtocol;

// Our side of the upstream connection: asks, and hands each answer line back.
class UpstreamProtocol : public protohost::LineProtocol {
 public:
  explicit UpstreamProtocol(LookupProtocol& client) : client_(client) {}
  void connectionMade() override;
  void lineReceived(std::string_view line) override;
  void connectionLost(const protohost::DisconnectReason& reason) override;

 private:
  LookupProtocol& client_;  // valid throughout: the host closes us before the client's connectionLost
};

class LookupProtocol : public protohost::LineProtocol {
 public:
  explicit LookupProtocol(Settings settings) : settings_(std::move(settings)) {}

  void lineReceived(std::string_view line) override {
    if (!line.starts_with("GET ") || !validKey(line.substr(4))) return sendLine("ERROR usage: GET key");
    key_ = line.substr(4);
    transport().pauseReading();  // one request at a time
    // The work gets copies and a result slot of its own: it must not touch this protocol.
    auto found = std::make_shared<std::optional<std::string>>();
    const auto status = transport().reactor().deferToThread(
        [path = settings_.root + "/" + key_, found] { *found = firstLine(path); },
        [this, found](std::exception_ptr error) {  // back on our reactor, only while we exist
          if (error) answer("ERROR cannot read " + key_);
          else if (*found) answer("VALUE " + **found);
          else askUpstream();
        });
    if (status != protohost::WorkStatus::Queued) answer("ERROR busy");
  }

  // Called by UpstreamProtocol, on our reactor thread.
  void upstreamReady(UpstreamProtocol& upstream) {
    upstream_ = &upstream;
    if (waiting_) upstream.sendLine("GET " + key_);
  }
  void upstreamAnswered(std::string_view line) {
    if (waiting_) answer(std::string(line));
  }
  void upstreamLost() {
    upstream_ = nullptr;
    if (waiting_) answer("ERROR upstream closed");
  }

 private:
  void askUpstream() {
    waiting_ = true;
    if (upstream_ != nullptr) return upstream_->sendLine("GET " + key_);
    transport().reactor().connect(settings_.upstream, std::make_unique<UpstreamProtocol>(*this),
                                  [this](const protohost::ConnectError& e) { answer("ERROR upstream: " + e.detail); });
  }

  void answer(const std::string& line) {
    waiting_ = false;
    if (transport().isClosing()) return;
    sendLine(line);
    transport().resumeReading();
  }

  // Letters, digits, '-', '_' and '.', not first: no path leaves ROOT.
  static bool validKey(std::string_view key) {
    if (key.empty() || key.size() > 200 || key.front() == '.') return false;
    for (char c : key)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
    return true;
  }

  // Runs on a worker thread.
  static std::optional<std::string> firstLine(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line)) return std::nullopt;
    return line;
  }

  const Settings settings_;
  UpstreamProtocol* upstream_ = nullptr;  // while connected
  std::string key_;                       // of the request being answered
  bool waiting_ = false;                  // for the upstream's answer
};

inline void UpstreamProtocol::connectionMade() { client_.upstreamReady(*this); }
inline void UpstreamProtocol::lineReceived(std::string_view line) { client_.upstreamAnswered(line); }
inline void UpstreamProtocol::connectionLost(const protohost::DisconnectReason&) { client_.upstreamLost(); }

// SimpleFactory builds the protocols; configure reads the two keys.
class LookupFactory : public protohost::SimpleFactory<LookupProtocol> {
 public:
  LookupFactory() : SimpleFactory([this] { return std::make_unique<LookupProtocol>(settings_); }) {}

  void configure(const protohost::ConfigView& config) override {
    settings_.upstream = config.requireString("upstream");
    settings_.root = config.getPath("root");
    if (settings_.root.empty()) config.fail("root", "missing required key");
  }

 private:
  Settings settings_;  // written by configure (main thread) before any protocol is built
};

}  // namespace lookup
