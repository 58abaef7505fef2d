#include "ops/AdminService.h"

namespace protohost::host {
namespace {

constexpr std::size_t kMaxRequestHead = 8192;

std::string response(int status, const char* reason, const std::string& contentType, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: " + contentType +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

class AdminProtocol final : public Protocol {
 public:
  AdminProtocol(const std::function<std::string()>& metrics, const std::function<std::string()>& readiness)
      : metrics_(metrics), readiness_(readiness) {}

  void dataReceived(std::string_view data) override {
    if (answered_) return;
    head_.append(data);
    auto end = head_.find("\r\n\r\n");
    if (end == std::string::npos) end = head_.find("\n\n");
    if (end == std::string::npos) {
      if (head_.size() > kMaxRequestHead) reply(response(431, "Request Header Fields Too Large", "text/plain", "request head too large\n"));
      return;
    }
    reply(answerAdminRequest(head_.substr(0, end), metrics_, readiness_));
  }

 private:
  void reply(const std::string& bytes) {
    answered_ = true;
    transport().write(bytes);
    transport().loseConnection();
  }
  const std::function<std::string()>& metrics_;
  const std::function<std::string()>& readiness_;
  std::string head_;
  bool answered_ = false;
};

}  // namespace

std::string answerAdminRequest(const std::string& head, const std::function<std::string()>& metrics,
                               const std::function<std::string()>& readiness) {
  auto lineEnd = head.find_first_of("\r\n");
  std::string requestLine = head.substr(0, lineEnd);
  auto sp1 = requestLine.find(' ');
  auto sp2 = sp1 == std::string::npos ? std::string::npos : requestLine.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos || requestLine.compare(sp2 + 1, 5, "HTTP/") != 0)
    return response(400, "Bad Request", "text/plain", "bad request line\n");
  std::string method = requestLine.substr(0, sp1);
  std::string target = requestLine.substr(sp1 + 1, sp2 - sp1 - 1);
  if (auto q = target.find('?'); q != std::string::npos) target.resize(q);
  if (method != "GET" && method != "HEAD") return response(405, "Method Not Allowed", "text/plain", "only GET\n");
  std::string out;
  if (target == "/metrics") {
    out = response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", metrics());
  } else if (target == "/healthz") {
    out = response(200, "OK", "text/plain", "ok\n");
  } else if (target == "/readyz") {
    std::string why = readiness();
    out = why.empty() ? response(200, "OK", "text/plain", "ready\n")
                      : response(503, "Service Unavailable", "text/plain", "not ready: " + why + "\n");
  } else {
    out = response(404, "Not Found", "text/plain", "try /metrics, /healthz or /readyz\n");
  }
  if (method == "HEAD") out.resize(out.find("\r\n\r\n") + 4);
  return out;
}

AdminFactory::AdminFactory(std::function<std::string()> metrics, std::function<std::string()> readiness)
    : metrics_(std::move(metrics)), readiness_(std::move(readiness)) {}

std::unique_ptr<Protocol> AdminFactory::buildProtocol() {
  return std::make_unique<AdminProtocol>(metrics_, readiness_);
}

}  // namespace protohost::host
