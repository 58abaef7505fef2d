#pragma once
// What TrackedReactor::connect and cancelConnect forward to: the outbound
// connections of the reactor's owner. Declared here, implemented above the
// reactor layer (plugin/OutboundConnections.h), which knows connections and
// listeners. The owner names an OutboundProvider (its listener runtime), which
// makes the service on the first connect: owners that never connect pay nothing.
//
// Threading: the owner's loop thread (closeAll also from main once the loop has stopped).

#include <functional>
#include <memory>
#include <string_view>

#include "protohost/Protocol.h"
#include "protohost/Reactor.h"

namespace protohost::host {

class EventLoop;
class TrackedReactor;

class OutboundService {
 public:
  virtual ~OutboundService() = default;
  /// Reactor::connect's contract.
  virtual ConnectId connect(std::string_view endpoint, std::unique_ptr<Protocol> protocol,
                            std::function<void(const ConnectError&)> onFailed) = 0;
  /// Reactor::cancelConnect's contract.
  virtual bool cancel(ConnectId id) = 0;
  /// The owner ended: connects in progress are dropped without a callback,
  /// live connections closed (Shutdown); later connects are refused.
  virtual void closeAll() = 0;
};

/// Makes the OutboundService of one owner whose reactor is @p reactor on @p loop.
class OutboundProvider {
 public:
  virtual std::unique_ptr<OutboundService> outboundFor(EventLoop& loop, TrackedReactor& reactor) = 0;

 protected:
  ~OutboundProvider() = default;
};

}  // namespace protohost::host
