#pragma once
/// @file Factory.h
/// One per listener: configuration, shared state and protocol creation
/// (Twisted's Factory with startFactory/stopFactory).

#include <memory>
#include <stdexcept>
#include <string>

#include "protohost/ConfigView.h"
#include "protohost/DatagramProtocol.h"
#include "protohost/Handles.h"
#include "protohost/Logger.h"
#include "protohost/Protocol.h"
#include "protohost/Reactor.h"

namespace protohost {

/// Thrown from Factory::configure or start when the plugin's persisted state is
/// corrupt or unreadable: the host refuses to start and exits with status 65
/// (EX_DATAERR) rather than silently starting over.
class __attribute__((visibility("default"))) StateError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What the host lends a factory for its lifetime (from start to stop).
class __attribute__((visibility("default"))) FactoryContext {
 public:
  virtual ~FactoryContext() = default;
  /// The listener's name, e.g. "echo" for [listener.echo].
  virtual const std::string& listenerName() const = 0;
  /// The reactor that runs this factory's own timers (the host's first reactor).
  /// Connections may run on other reactors: reach them through their
  /// transport's handle() (Handles.h), which is safe after they are gone.
  /// Its connect() and deferToThread() belong to the factory: they end with it.
  virtual Reactor& reactor() = 0;
  /// The host's log, tagged with the listener name.
  virtual Logger& logger() = 0;
  /// A token that reaches this factory's reactor from any thread until the
  /// factory stops (see Handles.h). Since SDK 1.3 (appended).
  virtual FactoryHandle handle() = 0;
};

/// Lifecycle: configure (main thread) -> start -> buildProtocol* (reactor
/// threads) -> stop -> destructor. start and stop never run concurrently with
/// the factory's own timers (they run on the first reactor's thread, or on the
/// main thread while the reactors are not running). A factory outlives every
/// protocol it built; after a config reload replaced it, it keeps serving its
/// existing connections and is stopped when the last one ends. Methods must not
/// block for long: start and stop run while the host is starting, reloading or draining.
class __attribute__((visibility("default"))) Factory {
 public:
  virtual ~Factory() = default;

  /// Reads this listener's keys. Throw ConfigError (or call config.fail) for bad
  /// values: the host prints the message and exits with status 78 before binding.
  /// Called once, on the main thread, also by `host --check-config`.
  virtual void configure(const ConfigView& config) { (void)config; }

  /// The listener is bound and about to accept. Throw to refuse start (logged,
  /// host exits non-zero). @p context outlives the factory's use of it (until stop returns).
  virtual void start(FactoryContext& context) { (void)context; }

  /// No new connections will be built; persist state and cancel your timers
  /// here. Called after every protocol of this factory was destroyed.
  virtual void stop() {}

  /// Whether this listener can serve right now (e.g. false while its state
  /// store is failing); reported by the host's /readyz. Any thread; must not block.
  virtual bool isReady() const { return true; }

  /// Creates the protocol of one new connection. Called on that connection's
  /// reactor thread; with `threads > 1` it runs concurrently on several threads,
  /// so guard shared state. Returning nullptr refuses the connection.
  virtual std::unique_ptr<Protocol> buildProtocol() = 0;

  // ---- Since SDK 1.3 (appended: the host calls it only on plugins built
  // against 1.3 or later, whose vtables have the slot) ----

  /// The protocol of a udp: listener's socket (one per listener), built once
  /// after start on the socket's reactor thread, and again when a reload
  /// replaces the factory. Default: none; a udp: listener whose factory
  /// returns nullptr fails to start (configuration error, exit 78).
  virtual std::unique_ptr<DatagramProtocol> buildDatagramProtocol() { return nullptr; }
};

/// The signature of the constructor a plugin exports per factory (see Plugin.h).
using FactoryCreateFn = std::unique_ptr<Factory>();

}  // namespace protohost
