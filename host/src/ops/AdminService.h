#pragma once
// The host's own admin listener ([admin] listen = ...): a minimal HTTP/1.x
// responder for /metrics (Prometheus text format), /healthz and /readyz. It is
// served by the same Connection machinery as plugins, through an in-process
// Factory. One request per connection; the response closes it.

#include <functional>
#include <memory>
#include <string>

#include "protohost/Factory.h"

namespace protohost::host {

class AdminFactory final : public Factory {
 public:
  /// @p metrics renders the metrics page; @p readiness returns "" when ready,
  /// else the reason. Both are called on a reactor thread and must not block.
  AdminFactory(std::function<std::string()> metrics, std::function<std::string()> readiness);
  std::unique_ptr<Protocol> buildProtocol() override;

 private:
  std::function<std::string()> metrics_;
  std::function<std::string()> readiness_;
};

/// Answers one HTTP request head (everything up to the blank line) with a full response.
std::string answerAdminRequest(const std::string& head, const std::function<std::string()>& metrics,
                               const std::function<std::string()>& readiness);

}  // namespace protohost::host
