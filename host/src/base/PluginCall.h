#pragma once
// The exception boundary around every call into plugin code: the protocol
// hooks (Connection), the factory's control plane (creation, configure, start,
// stop, isReady: Server, PluginLibrary, ListenerRuntime) and, as a last
// resort, every reactor callback (EventLoop). Whatever is thrown (a
// std::exception, `throw 42`, std::bad_alloc) is caught here and turned into
// text for the log or a refusal; it never unwinds into the host's control
// plane, a reactor or a destructor.

#include <optional>
#include <string>
#include <utility>

namespace protohost::host {

/// Names whose plugin code a thread runs (EventLoop::runningPlugin), without
/// the layers below plugin/ knowing what that is: the listener runtime (or any
/// ConnectionOwner) derives from it, and the code that reports a blocked
/// reactor (Server) casts it back. Carries nothing itself.
struct PluginCodeTag {
  virtual ~PluginCodeTag() = default;
};

/// The exception being handled, as text: what() of a std::exception, else
/// "non-standard exception (TYPE)". Call only inside a catch block.
std::string describeCurrentException();

/// Runs @p fn and catches everything it throws. Returns nullopt when it
/// returned, else describeCurrentException(). Exceptions the caller handles
/// itself (ConfigError, StateError) are caught inside @p fn.
template <class Fn>
std::optional<std::string> invokeGuarded(Fn&& fn) {
  try {
    std::forward<Fn>(fn)();
  } catch (...) {
    return describeCurrentException();
  }
  return std::nullopt;
}

}  // namespace protohost::host
