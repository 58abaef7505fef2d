#pragma once
// The host side of a ConnectionHandle or FactoryHandle (SDK Handles.h): a
// small object that other threads may keep and call after the target, its
// loop or its plugin are gone. post() queues the call through the loop's Gate
// (never a dangling loop pointer), holding the target's plugin code mapped
// while the call waits; on the loop thread the target's own deliver function
// decides whether the target still exists and runs the call inside the
// target's exception boundary.
//
// Ownership: shared by the target (which calls end() when it ends) and every
// handle copy. Threading: post() and alive() from any thread; end() and the
// deliver function on the target's loop thread.

#include <atomic>
#include <functional>
#include <memory>

#include "reactor/EventLoop.h"
#include "protohost/Handles.h"

namespace protohost::host {

class LoopHandleAnchor final : public HandleAnchor, public std::enable_shared_from_this<LoopHandleAnchor> {
 public:
  using Call = std::function<void(Transport*)>;
  /// Runs a call for the target on the loop thread, if the target exists.
  using Deliver = std::function<void(Call& call)>;

  /// @p code keeps the target's plugin library mapped while a call waits; once it
  /// has expired, post() fails.
  LoopHandleAnchor(std::shared_ptr<EventLoop::Gate> gate, std::weak_ptr<const void> code, Deliver deliver)
      : gate_(std::move(gate)), code_(std::move(code)), deliver_(std::move(deliver)) {}

  bool post(Call fn) override;
  bool alive() const override { return alive_.load(std::memory_order_acquire); }
  /// The target ended: later posts fail and queued calls are dropped unrun. Loop thread.
  void end() { alive_.store(false, std::memory_order_release); }

 private:
  std::shared_ptr<EventLoop::Gate> gate_;
  std::weak_ptr<const void> code_;
  Deliver deliver_;
  std::atomic<bool> alive_{true};
};

}  // namespace protohost::host
