#pragma once
// Something a connection reads before its protocol exists (the PROXY header
// today): the Connection feeds it the first bytes, under the stage's own
// deadline, and builds the protocol only once the stage is Done, handing it
// the bytes that followed. No plugin code runs for a connection whose stage
// failed. A TLS handshake is not a stage: it lives in the SocketLayer.
//
// Threading: the Connection's loop thread. Ownership: the Connection's, from
// open() until Done or the close.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string_view>

#include "protohost/Protocol.h"
#include "protohost/Transport.h"

namespace protohost::host {

class PreStage {
 public:
  enum class Step { NeedMore, Done, Failed };
  struct Outcome {
    Step step = Step::NeedMore;
    /// Done: how many bytes of the input given to feed() were the stage's;
    /// the rest belong to the protocol.
    std::size_t consumed = 0;
    /// Failed: why the connection closes.
    DisconnectReason failure{};
  };

  virtual ~PreStage() = default;

  /// What the stage reads, for log lines: "PROXY header".
  virtual const char* name() const = 0;
  /// How long the stage may take, counted from Connection::open().
  virtual std::chrono::milliseconds deadline() const = 0;
  /// The next bytes of the connection, split anywhere (one at a time included).
  virtual Outcome feed(std::string_view data) = 0;
  /// The peer closed (ClosedByPeer) or the deadline passed (Timeout) before
  /// Done: why the connection closes. The stage counts and logs it.
  virtual DisconnectReason endedEarly(DisconnectReason::Kind kind) = 0;
  /// Done: the endpoints the stage learned, which the connection reports to
  /// its protocol instead of the socket's (nullopt: the socket's).
  virtual std::optional<Address> peer() const { return std::nullopt; }
  virtual std::optional<Address> local() const { return std::nullopt; }
};

}  // namespace protohost::host
