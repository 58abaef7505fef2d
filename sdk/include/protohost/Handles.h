#pragma once
/// @file Handles.h
/// Copyable tokens that reach a connection or a factory from any thread, safely
/// after the target is gone (what `transport().reactor().post` is not). Since SDK 1.3.

#include <functional>
#include <memory>
#include <utility>

namespace protohost {

class Transport;

/// Host side of a handle (plugins never implement it). Thread-safe.
class __attribute__((visibility("default"))) HandleAnchor {
 public:
  virtual ~HandleAnchor() = default;
  /// Queues @p fn for the target's reactor thread. There it runs inside the
  /// target's exception boundary, with the target's Transport (nullptr for a
  /// factory), only if the target still exists; otherwise it is destroyed
  /// unrun. Returns false, and drops @p fn, when the target or its reactor is
  /// already gone.
  virtual bool post(std::function<void(Transport*)> fn) = 0;
  /// False once the target ended (connectionLost ran; the factory stopped).
  virtual bool alive() const = 0;
};

/// A connection, from any thread (Transport::handle()). Copyable; an empty
/// (default) handle is never alive. It keeps only a small host-side anchor
/// alive, never the connection, its protocol or the plugin.
class ConnectionHandle {
 public:
  ConnectionHandle() = default;
  explicit ConnectionHandle(std::shared_ptr<HandleAnchor> anchor) : anchor_(std::move(anchor)) {}
  /// Runs @p fn(transport) on the connection's reactor thread if the connection
  /// still exists then. False when it is already known to be gone (@p fn is not
  /// run). Thread: any.
  bool post(std::function<void(Transport&)> fn) const {
    if (!anchor_) return false;
    return anchor_->post([fn = std::move(fn)](Transport* transport) {
      if (transport != nullptr) fn(*transport);
    });
  }
  /// Whether the connection exists now (it may end right after). Thread: any.
  bool alive() const { return anchor_ && anchor_->alive(); }
  explicit operator bool() const { return anchor_ != nullptr; }

 private:
  std::shared_ptr<HandleAnchor> anchor_;
};

/// A factory, from any thread (FactoryContext::handle()), e.g. for a worker or
/// library thread of the plugin's that must hand a result back. Copyable; an
/// empty handle is never alive.
class FactoryHandle {
 public:
  FactoryHandle() = default;
  explicit FactoryHandle(std::shared_ptr<HandleAnchor> anchor) : anchor_(std::move(anchor)) {}
  /// Runs @p fn on the factory's reactor thread (FactoryContext::reactor()) if
  /// the factory has not stopped by then. False when it is already known to have
  /// stopped (@p fn is not run). Thread: any.
  bool post(std::function<void()> fn) const {
    if (!anchor_) return false;
    return anchor_->post([fn = std::move(fn)](Transport*) { fn(); });
  }
  /// Whether the factory is still started (it may stop right after). Thread: any.
  bool alive() const { return anchor_ && anchor_->alive(); }
  explicit operator bool() const { return anchor_ != nullptr; }

 private:
  std::shared_ptr<HandleAnchor> anchor_;
};

}  // namespace protohost
