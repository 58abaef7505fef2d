#include "FibonacciProtocol.h"

#include <string>

#include "WriteAhead.h"

namespace protohost::plugins::fibonacci {

FibonacciProtocol::FibonacciProtocol(std::shared_ptr<Sequence> sequence, std::size_t maxLineBytes)
    : LineProtocol("\n", maxLineBytes), sequence_(std::move(sequence)) {}

void FibonacciProtocol::lineReceived(std::string_view line) {
  (void)line;  // the content of a request does not matter
  Sequence::Draw d = sequence_->draw();
  if (d.writeAhead) startWriteAhead();
  if (d.answer.kind == Sequence::Answer::Kind::Pending) {
    awaitDurable(std::move(d.ticket));
    return;
  }
  send(d.answer);
}

void FibonacciProtocol::send(Sequence::Answer& answer) {
  answer.text += "\r\n";
  transport().write(answer.text);
}

void FibonacciProtocol::startWriteAhead() {
  // Refused (queue full, stopping): a later draw asks again.
  (void)deferWriteAhead(transport().reactor(), sequence_);
}

void FibonacciProtocol::awaitDurable(Sequence::Ticket ticket) {
  transport().pauseReading();  // the next request lines wait, in order, for this answer
  auto sequence = sequence_;
  auto answer = std::make_shared<Sequence::Answer>();
  auto promise = std::make_shared<Sequence::Ticket>(std::move(ticket));
  const WorkStatus status = transport().reactor().deferToThread(
      [sequence, promise, answer] { *answer = sequence->settle(*promise); },
      [this, answer](std::exception_ptr error) {
        if (error) *answer = {Sequence::Answer::Kind::Unavailable, 0, "ERR unavailable: internal error"};
        if (!sequence_->handOut(*answer)) *answer = Sequence::stopping();
        send(*answer);
        transport().resumeReading();
      });
  if (status == WorkStatus::Queued) return;
  Sequence::Answer refused = status == WorkStatus::QueueFull
                                 ? Sequence::Answer{Sequence::Answer::Kind::Unavailable, 0, std::string(kBusy)}
                                 : Sequence::stopping();
  send(refused);
  transport().resumeReading();
}

void FibonacciProtocol::lineLengthExceeded(std::size_t length) {
  transport().logger().warning("request line longer than " + std::to_string(maxLineLength()) + " bytes (" +
                               std::to_string(length) + " buffered); closing");
  transport().write("ERR line too long: the limit is " + std::to_string(maxLineLength()) + " bytes\r\n");
  transport().loseConnection();
}

}  // namespace protohost::plugins::fibonacci
