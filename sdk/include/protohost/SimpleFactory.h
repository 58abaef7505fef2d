#pragma once
/// @file SimpleFactory.h
/// A factory that only builds protocols (Twisted's Factory.forProtocol):
///
///     PROTOHOST_EXPORT_PROTOCOL(echo, EchoProtocol)          // Plugin.h: one line
///     SimpleFactory<Greeter> f([] { return std::make_unique<Greeter>("hi"); });
///     auto g = SimpleFactory<Greeter>::withArgs(std::string("hi"));
///
/// Derive from it to add configure/start/stop and keep buildProtocol. Since SDK 1.3.

#include <concepts>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include "protohost/Factory.h"
#include "protohost/Protocol.h"

namespace protohost {

template <class P>
class SimpleFactory : public Factory {
  static_assert(std::is_base_of_v<Protocol, P>, "SimpleFactory<P>: P must derive from protohost::Protocol");

 public:
  /// Builds one protocol. With `threads > 1` it is called concurrently on
  /// several reactor threads: it must not modify shared state unguarded.
  using Builder = std::function<std::unique_ptr<P>()>;

  /// Builds `std::make_unique<P>()` for each connection.
  SimpleFactory()
    requires std::default_initializable<P>
      : build_([] { return std::make_unique<P>(); }) {}

  /// Builds what @p build returns for each connection (nullptr refuses it).
  explicit SimpleFactory(Builder build) : build_(std::move(build)) {}

  /// Builds `std::make_unique<P>(args...)` from copies of @p args kept in the
  /// factory (passed to each constructor as const lvalues).
  template <class... Args>
  static SimpleFactory withArgs(Args&&... args) {
    return SimpleFactory(Builder([... kept = std::forward<Args>(args)]() { return std::make_unique<P>(kept...); }));
  }

  std::unique_ptr<Protocol> buildProtocol() override { return build_ ? build_() : nullptr; }

 private:
  Builder build_;
};

}  // namespace protohost
