#pragma once
// The running host: reactors, plugin libraries, factories and listeners, and
// the order in which they start, change on reload, and stop.
//
// Start: load libraries -> construct + configure factories (all before any
// bind) -> bind every listener -> start factories -> start reactors -> accept.
// Reload (SIGHUP): the same on the new config, off to the side; only when all
// of it succeeded is it swapped in on the first reactor: a listener whose
// endpoint stays keeps its socket (no accept gap) and hands new connections to
// the new factory; old connections keep the old factory and code until they
// end; removed listeners stop accepting and their connections are asked to finish.
// Stop: close listeners -> drain -> stop the worker pool (running work: up to
// the drain bound) -> close connections -> stop reactors -> stop factories ->
// drop callbacks -> destroy factories -> unload libraries. Each
// step records what it waits for, and so does every wait of reload() and
// collectRetired() on a reactor, so that a stop that a plugin blocks (also one
// requested while the main thread waits on a blocked reactor) can be reported
// (freezeStop) before the process is ended (StopDeadline.h).
// Threading: every public method on the main thread, except metricsText,
// readiness and freezeStop (any thread).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "reactor/EventLoop.h"
#include "config/HostConfig.h"
#include "net/DatagramListener.h"
#include "net/Listener.h"
#include "plugin/ListenerRuntime.h"
#include "ops/Metrics.h"
#include "plugin/PluginLibrary.h"
#include "ops/Watchdog.h"

namespace protohost::host {

/// Start or reload failed; message is ready for stderr, exitCode for the process.
class StartupError : public std::runtime_error {
 public:
  StartupError(const std::string& message, int exitCode) : std::runtime_error(message), exitCode_(exitCode) {}
  int exitCode() const { return exitCode_; }

 private:
  int exitCode_;
};

class FactoryContextImpl;
class WorkerPool;

class Server {
 public:
  explicit Server(HostConfig config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Loads every plugin and configures every factory. Binds nothing. All
  /// problems are reported together. Throws StartupError (78, or 65 for state).
  void load();
  /// Binds, starts factories and reactors, accepts. Throws StartupError.
  void start();
  /// Applies @p next in place (see above). Throws StartupError and leaves the
  /// running configuration untouched when anything in @p next fails.
  void reload(HostConfig next);
  /// Frees factories and libraries of replaced listeners whose last connection ended.
  void collectRetired();
  /// From now on readiness() reports "draining" (/readyz 503), while the
  /// listeners still accept: TERM with drain_delay_ms lets the balancer stop
  /// sending first. stop() closes them. Any thread.
  void announceDrain() { draining_ = true; }
  /// Orderly shutdown; safe to call twice or after a failed start. With a
  /// positive @p drainTimeout, protocols first get stopRequested and that long
  /// to close by themselves.
  void stop(std::chrono::milliseconds drainTimeout = std::chrono::milliseconds(0));
  /// What a stop that takes too long is waiting for, naming the listener
  /// whose plugin code blocks: "listener NAME: reactor-N (in plugin code) did
  /// not finish closing its connections" (or a wait of reload() or
  /// collectRetired() that the stop cannot begin before). nullopt when stop()
  /// has finished. Any thread, once: unless stop() has finished, the main
  /// thread makes no further progress (the caller is about to end the process).
  std::optional<std::string> freezeStop();

  const HostConfig& config() const { return config_; }
  HostStats& stats() { return hostStats_; }
  /// The /metrics page. Any thread.
  std::string metricsText();
  /// "" when ready, else why not (draining, a listener's factory not ready). Any thread.
  std::string readiness();

 private:
  // One configured listener (or the admin endpoint): its spec, its runtime
  // (factory + library) and, once bound, its socket: a Listener for tcp:, a
  // DatagramListener for udp: (with the protocol its factory built, until served).
  struct Slot {
    ListenerSpec spec;
    std::shared_ptr<ListenerRuntime> runtime;
    std::unique_ptr<Listener> listener;
    std::unique_ptr<FactoryContextImpl> context;
    bool started = false;
    std::unique_ptr<DatagramListener> datagram;
    std::unique_ptr<DatagramProtocol> pendingProtocol;  // built after start, served once swapped in
    /// ssl: listeners: loaded afresh by every start and reload (renewed
    /// certificate files are picked up even when the INI is unchanged).
    std::shared_ptr<TlsServerContext> tls = nullptr;
    /// The bound endpoint (the kernel's port when the config said 0).
    const Endpoint& boundEndpoint() const { return datagram ? datagram->endpoint() : listener->endpoint(); }
  };
  // A runtime replaced by a reload, kept until its last connection ends.
  struct Retired {
    std::shared_ptr<ListenerRuntime> runtime;
    std::unique_ptr<FactoryContextImpl> context;
    bool started = false;
  };

  /// Builds and configures the slots of @p config; reuses libraries of @p previous when the file is unchanged.
  std::vector<Slot> buildSlots(const HostConfig& config, const std::vector<Slot>* previous);
  std::shared_ptr<PluginLibrary> libraryFor(const std::string& path, std::map<std::string, std::shared_ptr<PluginLibrary>>& loaded);
  void startFactory(Slot& slot);
  /// A udp: slot's DatagramProtocol from its started factory, on the first
  /// reactor; throws StartupError (78) when the factory builds none.
  void buildDatagramProtocol(Slot& slot);
  /// Makes the slot's socket (Listener or DatagramListener) and binds it.
  void bindSlot(Slot& slot, int retries);
  /// One "listening on [udp:]ADDR:PORT (plugin P, factory F)" line per slot.
  void logListening() const;
  void stopFactory(const std::shared_ptr<ListenerRuntime>& runtime, bool started);
  void publishRuntimes();
  std::vector<EventLoop*> workerLoops();
  /// Where listeners accept: the only reactor, or a dedicated thread with threads > 1.
  EventLoop& acceptLoop();
  /// Records what the main thread waits for next (for freezeStop): @p what, on
  /// @p loop or in @p factory's stop() (either may be null).
  void recordWait(std::string what, EventLoop* loop, const ListenerRuntime* factory);
  /// runOn(@p loop) with the wait recorded as @p what.
  void runOnRecorded(EventLoop& loop, std::string what, const std::function<void()>& fn);
  /// Stops the worker pool (if any), waiting for running work until @p deadline.
  void stopWorkers(std::chrono::steady_clock::time_point deadline);
  /// Connections, and closed ones still lingering, on every reactor. Any thread.
  std::size_t openConnections() const;

  HostConfig config_;
  std::shared_ptr<HostCounters> hostCounters_;
  HostStats hostStats_;
  std::unique_ptr<WorkerPool> workers_;  // null with worker_threads = 0; stopped before the loops go
  std::vector<std::unique_ptr<EventLoop>> loops_;
  std::unique_ptr<EventLoop> acceptLoop_;  // only with threads > 1
  std::vector<Slot> slots_;
  std::vector<Retired> retired_;
  std::map<std::string, std::shared_ptr<PluginLibrary>> libraries_;  // by absolute path
  std::mutex publishedMutex_;
  std::vector<std::shared_ptr<ListenerRuntime>> published_;  // for metrics/readiness
  std::unique_ptr<Watchdog> watchdog_;
  bool running_ = false;
  std::atomic<bool> draining_{false};
  std::mutex waitMutex_;  // what the main thread waits for: a loop, a factory's stop() or a step
  std::string waitWhat_;
  EventLoop* waitLoop_ = nullptr;
  const ListenerRuntime* waitFactory_ = nullptr;
  bool stopFinished_ = false;  // stop() returned: nothing left for a StopDeadline to wait for
  // Signalled by a reactor's ConnectionSet when it becomes empty: the drain waits on it.
  std::mutex drainMutex_;
  std::condition_variable drainCv_;
};

}  // namespace protohost::host
