#pragma once
// The running host: reactors, plugin libraries, factories and listeners, and
// the order in which they start and stop.
//
// Start: load libraries -> construct + configure factories (all before any
// bind) -> bind every listener -> start factories -> start reactors -> accept.
// Stop: close listeners -> close connections -> stop reactors -> stop
// factories -> drop callbacks -> destroy factories -> unload libraries.
// Threading: every public method on the main thread.

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "EventLoop.h"
#include "HostConfig.h"
#include "Listener.h"
#include "ListenerRuntime.h"
#include "PluginLibrary.h"

namespace protohost::host {

/// Start failed; message is ready for stderr, exitCode for the process.
class StartupError : public std::runtime_error {
 public:
  StartupError(const std::string& message, int exitCode) : std::runtime_error(message), exitCode_(exitCode) {}
  int exitCode() const { return exitCode_; }

 private:
  int exitCode_;
};

class FactoryContextImpl;

class Server {
 public:
  explicit Server(HostConfig config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Loads every plugin and configures every factory. Binds nothing. All
  /// problems are reported together. Throws StartupError (exit 78).
  void load();
  /// Binds, starts factories and reactors, accepts. Throws StartupError.
  void start();
  /// Orderly shutdown; safe to call twice or after a failed start. With a
  /// positive @p drainTimeout, protocols first get stopRequested and that long
  /// to close by themselves.
  void stop(std::chrono::milliseconds drainTimeout = std::chrono::milliseconds(0));

  /// True from the start of stop(): /readyz answers 503.
  bool draining() const { return draining_; }

  const HostConfig& config() const { return config_; }
  const std::vector<std::unique_ptr<Listener>>& listeners() const { return listeners_; }

 private:
  HostConfig config_;
  std::map<std::string, std::shared_ptr<PluginLibrary>> libraries_;
  std::vector<std::unique_ptr<EventLoop>> loops_;
  std::vector<std::shared_ptr<ListenerRuntime>> runtimes_;
  std::vector<std::unique_ptr<FactoryContextImpl>> contexts_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<std::size_t> startedFactories_;
  std::shared_ptr<HostCounters> hostCounters_;
  bool running_ = false;
  std::atomic<bool> draining_{false};
};

}  // namespace protohost::host
