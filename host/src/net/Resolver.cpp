#include "net/Resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cstring>
#include <memory>
#include <utility>

namespace protohost::host {

std::string SocketAddress::toString() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (family() == AF_INET) {
    auto& a = reinterpret_cast<const sockaddr_in&>(storage);
    ::inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(a.sin_port));
  }
  if (family() == AF_INET6) {
    auto& a = reinterpret_cast<const sockaddr_in6&>(storage);
    ::inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(a.sin6_port));
  }
  return "?";
}

SocketAddress Resolver::numeric(const std::string& host, int family, std::uint16_t port) {
  SocketAddress out;
  if (family == AF_INET6) {
    auto& a = reinterpret_cast<sockaddr_in6&>(out.storage);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    ::inet_pton(AF_INET6, host.c_str(), &a.sin6_addr);
    out.length = sizeof a;
  } else {
    auto& a = reinterpret_cast<sockaddr_in&>(out.storage);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, host.c_str(), &a.sin_addr);
    out.length = sizeof a;
  }
  return out;
}

void Resolver::resolve(const std::string& host, std::uint16_t port, const Defer& defer,
                       std::function<void(Result)> done) {
  // Written by the worker, read by the completion on the reactor: the pool's
  // hand-over orders the two.
  struct Lookup {
    std::string host;
    std::uint16_t port;
    Result result;
  };
  auto lookup = std::make_shared<Lookup>(Lookup{host, port, {}});
  auto work = [lookup] {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    addrinfo* list = nullptr;
    const std::string service = std::to_string(lookup->port);
    const int rc = ::getaddrinfo(lookup->host.c_str(), service.c_str(), &hints, &list);
    if (rc != 0) {
      lookup->result.error = {ConnectError::Kind::Unresolvable, lookup->host + ": " + ::gai_strerror(rc)};
      return;
    }
    for (addrinfo* ai = list; ai; ai = ai->ai_next) {
      if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
      SocketAddress a;
      std::memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
      a.length = static_cast<socklen_t>(ai->ai_addrlen);
      lookup->result.addresses.push_back(a);
    }
    ::freeaddrinfo(list);
    if (lookup->result.addresses.empty())
      lookup->result.error = {ConnectError::Kind::Unresolvable, lookup->host + ": no IPv4 or IPv6 address"};
  };
  auto completion = [lookup, done](std::exception_ptr failure) {
    if (failure) {
      std::string what = "resolution failed";
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      done(Result{{}, {ConnectError::Kind::Unresolvable, lookup->host + ": " + what}});
      return;
    }
    done(std::move(lookup->result));
  };
  const WorkStatus status = defer ? defer(std::move(work), std::move(completion)) : WorkStatus::ShuttingDown;
  if (status == WorkStatus::Queued) return;
  done(Result{{}, {ConnectError::Kind::Unresolvable,
                   host + ": not resolved (" +
                       (status == WorkStatus::QueueFull ? "the worker queue is full" : "no worker pool") + ")"}});
}

}  // namespace protohost::host
