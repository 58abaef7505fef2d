#include "FibonacciProtocol.h"

#include <string>

namespace protohost::plugins::fibonacci {

FibonacciProtocol::FibonacciProtocol(std::shared_ptr<Sequence> sequence, std::size_t maxLineBytes)
    : LineProtocol("\n", maxLineBytes), sequence_(std::move(sequence)) {}

void FibonacciProtocol::lineReceived(std::string_view line) {
  (void)line;  // the content of a request does not matter
  Sequence::Answer answer = sequence_->next();
  answer.text += "\r\n";
  transport().write(answer.text);
}

void FibonacciProtocol::lineLengthExceeded(std::size_t length) {
  transport().logger().warning("request line longer than " + std::to_string(maxLineLength()) + " bytes (" +
                               std::to_string(length) + " buffered); closing");
  transport().write("ERR line too long: the limit is " + std::to_string(maxLineLength()) + " bytes\r\n");
  transport().loseConnection();
}

}  // namespace protohost::plugins::fibonacci
