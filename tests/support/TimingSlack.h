#pragma once
// Scheduling slack for the few tests that assert a wall-clock bound (a TERM
// that must end the process within drain_timeout_ms + a documented bound).
// The bound itself is the product's promise and is never scaled; only the
// slack a test adds on top for a loaded machine is, under sanitizers, whose
// instrumentation slows the host's start-up, thread exits and exit path.

namespace protohost::testing {

#if defined(__SANITIZE_THREAD__)
inline constexpr int kTimingSlackFactor = 4;
#elif defined(__SANITIZE_ADDRESS__)
inline constexpr int kTimingSlackFactor = 2;
#else
inline constexpr int kTimingSlackFactor = 1;
#endif

/// @p ms of slack for this build.
constexpr int slackMs(int ms) { return ms * kTimingSlackFactor; }

}  // namespace protohost::testing
