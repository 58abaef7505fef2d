#pragma once
// Polling wait for a condition that no event announces (a /proc field, a file,
// a counter in another process). Prefer a condition-variable wait where one
// exists (ChildProcess::waitForLog, TestClient reads): this is for the rest.

#include <chrono>
#include <functional>
#include <thread>

namespace protohost::testsupport {

/// Polls @p pred every @p step until it holds or @p timeout passes; returns its last value.
inline bool waitUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                      std::chrono::milliseconds step = std::chrono::milliseconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

}  // namespace protohost::testsupport
