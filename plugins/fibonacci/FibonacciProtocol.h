#pragma once
// One connection: every request line (any content, e.g. "NEXT", ended by "\n"
// or "\r\n") is answered with one line, "<decimal>\r\n" or "ERR ...\r\n".
// Unlike the article's server (one write per read, no separator), answers are
// one per request and always line-terminated.
//
// A request beyond the durable ceiling never blocks the reactor: the
// connection pauses reading (LineProtocol holds the next lines, so answers
// stay in request order), runs Sequence::settle on a host worker thread
// (Reactor::deferToThread) and answers from its done, on this connection's
// reactor, then resumes. Refused work is answered at once:
//   QueueFull    -> "ERR busy: ..." (the index is skipped, never repeated)
//   ShuttingDown -> "ERR unavailable: the service is stopping"
// Threads: the connection's reactor thread only (done runs there, and only
// while the connection exists).

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

  static constexpr std::string_view kBusy =
      "ERR busy: no host worker thread free to make the answer durable (worker queue full); ask again";

 private:
  void send(Sequence::Answer& answer);
  void startWriteAhead();
  void awaitDurable(Sequence::Ticket ticket);

  std::shared_ptr<Sequence> sequence_;
};

}  // namespace protohost::plugins::fibonacci
