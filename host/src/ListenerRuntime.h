#pragma once
// What one configured listener shares with all of its connections: the
// factory, the library that made it, limits and counters. Connections hold a
// shared_ptr to it, so the factory and library outlive every protocol.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "PluginLibrary.h"
#include "protohost/Factory.h"

namespace protohost::host {

struct ListenerStats {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> open{0};
  std::atomic<std::uint64_t> bytesIn{0};
  std::atomic<std::uint64_t> bytesOut{0};
  std::atomic<std::uint64_t> pluginErrors{0};
  std::atomic<std::uint64_t> acceptErrors{0};
  std::atomic<std::uint64_t> overflows{0};
};

struct ConnectionLimits {
  /// Reading pauses while more than this much output is unsent (echo-style
  /// back-pressure); it resumes below half of it.
  std::size_t pauseReadingAbove = 1u << 20;
  /// A connection whose unsent output exceeds this is closed (Overflow).
  std::size_t maxOutputBytes = 64u << 20;
};

struct ListenerRuntime {
  std::string name;         // listener section name
  std::string pluginName;
  std::string factoryName;
  // Declaration order is destruction order reversed: the factory goes before its library.
  std::shared_ptr<PluginLibrary> library;
  std::unique_ptr<Factory> factory;
  ConnectionLimits limits;
  ListenerStats stats;

  ~ListenerRuntime() { factory.reset(); }
};

}  // namespace protohost::host
