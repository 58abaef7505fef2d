#pragma once
// RFC 862 Echo over TCP: every byte back, in order, until the client closes.

#include "protohost/Protocol.h"

namespace protohost::plugins::echo {

class EchoProtocol : public Protocol {
 public:
  void dataReceived(std::string_view data) override { transport().write(data); }
  // readEnded keeps the SDK default: the client shut down writing, so flush
  // what is pending and close (half-close handling of RFC 862).
};

}  // namespace protohost::plugins::echo
