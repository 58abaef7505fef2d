#pragma once
// One connection: every request line (any content, e.g. "NEXT", ended by "\n"
// or "\r\n") is answered with one line, "<decimal>\r\n" or "ERR ...\r\n".
// Unlike the article's server (one write per read, no separator), answers are
// one per request and always line-terminated.

#include <cstddef>
#include <memory>
#include <string_view>

#include "Sequence.h"
#include "protohost/LineProtocol.h"

namespace protohost::plugins::fibonacci {

class FibonacciProtocol : public LineProtocol {
 public:
  FibonacciProtocol(std::shared_ptr<Sequence> sequence, std::size_t maxLineBytes);

  void lineReceived(std::string_view line) override;
  /// Answers "ERR line too long: ..." and closes after flushing.
  void lineLengthExceeded(std::size_t length) override;

 private:
  std::shared_ptr<Sequence> sequence_;
};

}  // namespace protohost::plugins::fibonacci
