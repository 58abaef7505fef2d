#pragma once
// The outbound connections (Reactor::connect) of one owner, a connection or a
// factory: the connects in progress and the connections they made. A made
// connection is a Connection like an accepted one, in its loop's connection
// set, holding the owner's ListenerRuntime (so the plugin library stays
// mapped while it lives). When the owner ends, closeAll() drops every connect
// in progress without a callback and closes every live connection (Shutdown) with an RST.
//
// Ownership: installed in the owner's TrackedReactor (ListenerRuntime::outboundFor). Threading: the loop's
// thread (closeAll also from main once the loop has stopped).

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "net/Connector.h"
#include "net/TlsContext.h"
#include "plugin/ListenerRuntime.h"
#include "reactor/EventLoop.h"
#include "reactor/OutboundService.h"
#include "reactor/TrackedReactor.h"
#include "protohost/Protocol.h"
#include "protohost/Reactor.h"

namespace protohost::host {

class Connection;

class OutboundConnections final : public OutboundService {
 public:
  /// @p runtime: the owner's listener runtime (empty: every connect fails
  /// with Shutdown). @p reactor: the owner's, whose guard runs onFailed (not
  /// at all once the owner is gone) and whose deferToThread resolves names.
  OutboundConnections(EventLoop& loop, std::weak_ptr<ListenerRuntime> runtime, TrackedReactor& reactor);
  ~OutboundConnections() override { closeAll(); }
  OutboundConnections(const OutboundConnections&) = delete;
  OutboundConnections& operator=(const OutboundConnections&) = delete;

  /// Reactor::connect's contract. After closeAll() it returns an empty id and
  /// drops @p protocol and @p onFailed.
  ConnectId connect(std::string_view endpoint, std::unique_ptr<Protocol> protocol,
                    std::function<void(const ConnectError&)> onFailed) override;
  /// Reactor::cancelConnect's contract: onFailed gets Cancelled (later).
  bool cancel(ConnectId id) override;
  /// The owner ended: see the file comment. Later connects are refused.
  void closeAll() override;

 private:
  struct Pending {
    std::uint64_t id = 0;
    std::string target;  // HOST:PORT (the endpoint text when it did not parse)
    std::shared_ptr<Connector> connector;  // null for an endpoint that did not parse
    std::unique_ptr<Protocol> protocol;
    std::function<void(const ConnectError&)> onFailed;
    bool cancelled = false;  // cancelConnect: the Cancelled report is on its way
    std::shared_ptr<TlsClientContext> tls;  // ssl: endpoints
    std::string serverName;                 // ssl: the name the certificate must hold (and the SNI)
  };

  void connected(std::uint64_t id, int fd, const SocketAddress& peer, std::uint32_t registered);
  /// Ends pending @p id: its protocol is destroyed (no hook), then onFailed runs with @p error.
  void failed(std::uint64_t id, const ConnectError& error);
  /// Counts @p error, logs it at debug level and calls @p onFailed (if any)
  /// inside the plugin-code guard: every way a connect fails ends here.
  void reportFailure(const std::string& target, std::function<void(const ConnectError&)> onFailed,
                     const ConnectError& error);
  /// Reports @p error for pending @p id after this dispatch round, unless it ended meanwhile.
  void failLater(std::uint64_t id, ConnectError error);
  /// Removes pending @p id; null when it is not pending any more.
  std::shared_ptr<Pending> take(std::uint64_t id);
  /// Releases @p connector after the loop's dispatch round (see Connector.h).
  void retire(std::shared_ptr<Connector> connector);
  void countFailure(ConnectError::Kind kind);

  EventLoop& loop_;
  std::weak_ptr<ListenerRuntime> runtime_;
  TrackedReactor::Guard guard_;
  Resolver::Defer defer_;
  std::unordered_map<std::uint64_t, std::shared_ptr<Pending>> pending_;
  std::vector<std::weak_ptr<Connection>> live_;
  std::uint64_t lastId_ = 0;
  bool ended_ = false;
};

}  // namespace protohost::host
