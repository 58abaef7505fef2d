#pragma once
// Turns an endpoint's host into socket addresses. A literal address is
// converted at once, with no resolution; a name goes to getaddrinfo() on a
// worker thread through the caller's deferToThread (never on the reactor, and
// never on a thread of its own). Without a worker pool, or with its queue
// full, a name fails as Unresolvable.
//
// Threading: resolve() and every callback on the caller's reactor thread.

#include <sys/socket.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "protohost/Reactor.h"

namespace protohost::host {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  int family() const { return storage.ss_family; }
  /// "127.0.0.1:80", "[::1]:80".
  std::string toString() const;
};

class Resolver {
 public:
  /// The reactor's deferToThread (Reactor::deferToThread's contract).
  using Defer = std::function<WorkStatus(std::function<void()> work, std::function<void(std::exception_ptr)> done)>;
  /// Either addresses (in getaddrinfo's order, at least one) or an error.
  struct Result {
    std::vector<SocketAddress> addresses;
    ConnectError error;  // meaningful when addresses is empty
  };

  /// resolve()'s signature: what a Connector resolves names with (a test gives
  /// it a fake that answers with addresses of its choosing).
  using Function = std::function<void(const std::string& host, std::uint16_t port, const Defer& defer,
                                      std::function<void(Result)> done)>;

  /// The address of a literal @p host of @p family (AF_INET, AF_INET6). Any thread.
  static SocketAddress numeric(const std::string& host, int family, std::uint16_t port);

  /// Resolves @p host through @p defer and calls @p done with the result on
  /// the reactor thread, later (never from inside this call unless @p defer
  /// refuses: then at once, with Unresolvable). @p done is dropped, not called,
  /// when the deferred completion is (the owner ended).
  static void resolve(const std::string& host, std::uint16_t port, const Defer& defer,
                      std::function<void(Result)> done);
};

}  // namespace protohost::host
