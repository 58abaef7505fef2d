#include "WriteAhead.h"

namespace protohost::plugins::fibonacci {

namespace {
// Ends the sequence's request for a write ahead when the work that carries it
// is destroyed: after it ran, or unrun (queue full, host stopping).
struct AheadRequest {
  std::shared_ptr<Sequence> sequence;
  ~AheadRequest() { sequence->aheadFinished(); }
};
}  // namespace

WorkStatus deferWriteAhead(Reactor& reactor, const std::shared_ptr<Sequence>& sequence) {
  auto request = std::make_shared<AheadRequest>(AheadRequest{sequence});
  return reactor.deferToThread([request] { request->sequence->writeAhead(); }, [](std::exception_ptr) {});
}

}  // namespace protohost::plugins::fibonacci
