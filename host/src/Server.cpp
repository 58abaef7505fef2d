#include "Server.h"

#include <unistd.h>

#include <algorithm>
#include <exception>
#include <optional>
#include <thread>

#include "ops/AdminService.h"
#include "base/ExitCodes.h"
#include "base/Log.h"
#include "base/PluginCall.h"
#include "ops/ServiceUserAccess.h"
#include "config/ReloadPaths.h"
#include "net/ConnectionSet.h"
#include "net/SocketActivation.h"
#include "reactor/LoopHandleAnchor.h"
#include "reactor/TrackedReactor.h"
#include "reactor/WorkerPool.h"

namespace protohost::host {

// What a factory gets for its lifetime: its name, a logger and the first
// reactor, whose callbacks run inside an exception boundary that logs with
// the listener and plugin names instead of unwinding the reactor. It tracks
// the factory's timers and watches, so that the factory cancels only its own
// and a retired factory's leftovers can be cancelled before its library is unloaded.
class FactoryContextImpl final : public FactoryContext {
 public:
  // The reactor's work keeps @p runtime (factory and library) while it runs; this object holds no reference.
  FactoryContextImpl(const std::shared_ptr<ListenerRuntime>& runtime, EventLoop& loop)
      : runtime_(*runtime), reactor_(loop, guardFor(*runtime, loop), runtime), logger_("listener=" + runtime->name),
        anchor_(std::make_shared<LoopHandleAnchor>(loop.gate(), runtime, [this](LoopHandleAnchor::Call& call) {
          // On the loop thread; the anchor ended (so this is not called) before the context goes.
          reactor_.guard()([&call] { call(nullptr); })();
        })) {
    reactor_.setOutboundProvider(runtime.get());  // the runtime outlives its context (Slot, Retired)
  }
  ~FactoryContextImpl() override { anchor_->end(); }
  const std::string& listenerName() const override { return runtime_.name; }
  Reactor& reactor() override { return reactor_; }
  Logger& logger() override { return logger_; }
  /// Alive until the factory is stopped (cancelTimers).
  FactoryHandle handle() override { return FactoryHandle(anchor_); }
  /// Cancels every timer and watch the factory left, closes its outbound
  /// connections and ends its handles. Thread: the first reactor's (or main while stopped).
  void cancelTimers() {
    anchor_->end();
    reactor_.cancelAll();
  }

 private:
  static TrackedReactor::Guard guardFor(ListenerRuntime& runtime, EventLoop& loop) {
    return [&runtime, &loop](Reactor::Callback fn) -> Reactor::Callback {
      return [&runtime, &loop, fn = std::move(fn)] {
        if (auto failure = invokePluginCode(loop, &runtime, fn)) callbackFailed(runtime, *failure);
      };
    };
  }
  static void callbackFailed(ListenerRuntime& runtime, const std::string& what) {
    runtime.stats.pluginErrors.fetch_add(1, std::memory_order_relaxed);
    Log::instance().write(LogLevel::Error, "listener=" + runtime.name,
                          "plugin " + runtime.pluginName + " factory callback threw: " + what);
  }

  ListenerRuntime& runtime_;
  TrackedReactor reactor_;
  ContextLogger logger_;
  std::shared_ptr<LoopHandleAnchor> anchor_;  // shared with the factory's handles
};

namespace {

bool sameSpec(const ListenerSpec& a, const ListenerSpec& b) {
  auto values = [](const ConfigView& v) {
    std::map<std::string, std::string> m;
    for (const auto& [k, e] : v.entries()) m[k] = e.value;
    return m;
  };
  const auto& la = a.limits;
  const auto& lb = b.limits;
  return a.name == b.name && a.plugin == b.plugin && a.factory == b.factory &&
         a.endpoint.scheme == b.endpoint.scheme && a.endpoint.toString() == b.endpoint.toString() &&
         a.endpoint.backlog == b.endpoint.backlog && la.maxDatagramBytes == lb.maxDatagramBytes &&
         la.maxConnections == lb.maxConnections && la.maxConnectionsPerIp == lb.maxConnectionsPerIp &&
         la.idleTimeoutMs == lb.idleTimeoutMs && la.maxOutputBytes == lb.maxOutputBytes &&
         la.proxyProtocol == lb.proxyProtocol && la.proxyProtocolTimeoutMs == lb.proxyProtocolTimeoutMs &&
         values(a.pluginConfig) == values(b.pluginConfig);
}

bool sameEndpoint(const Endpoint& a, const Endpoint& b) {
  // tcp: and ssl: are the same kind of socket: a switch between them keeps it (setTls swaps the layer).
  return a.isDatagram() == b.isDatagram() && a.interface == b.interface && a.port == b.port && a.backlog == b.backlog;
}

// Runs @p fn on @p loop's thread when it is running (else here) and rethrows its exception.
void runOn(EventLoop& loop, bool running, const std::function<void()>& fn) {
  if (!running) return fn();
  std::exception_ptr error;
  loop.runAndWait([&] {
    try {
      fn();
    } catch (...) {
      error = std::current_exception();
    }
  });
  if (error) std::rethrow_exception(error);
}

const char* const kAdminName = "admin";

// Runs @p F when the scope ends, also by an exception.
template <class F>
struct OnExit {
  F f;
  ~OnExit() { f(); }
};
template <class F>
OnExit(F) -> OnExit<F>;

}  // namespace

Server::Server(HostConfig config) : config_(std::move(config)), hostCounters_(std::make_shared<HostCounters>()) {
  hostCounters_->maxConnections.store(config_.maxConnections, std::memory_order_relaxed);
}

Server::~Server() { stop(); }

std::shared_ptr<PluginLibrary> Server::libraryFor(const std::string& path,
                                                  std::map<std::string, std::shared_ptr<PluginLibrary>>& loaded) {
  if (auto it = loaded.find(path); it != loaded.end()) return it->second;
  std::shared_ptr<PluginLibrary> lib;
  auto old = libraries_.find(path);
  if (old != libraries_.end() && PluginLibrary::fileId(path) == old->second->loadedFileId()) {
    lib = old->second;
  } else {
    const unsigned serviceUid = config_.identity.user.empty() ? ::geteuid() : config_.identity.uid;
    if (std::string why = checkPluginFileSafety(path, serviceUid); !why.empty()) throw PluginError(why);
    // A file replaced since it was loaded gets a fresh mapping; old connections keep the old one.
    lib = PluginLibrary::load(path);
    if (!lib->uniqueSymbols().empty())
      Log::instance().write(LogLevel::Warning, "", "plugin " + lib->path() + " has GNU unique symbols (" +
                                                       lib->uniqueSymbols().front() +
                                                       "): it can never be unloaded, so a replaced copy stays mapped "
                                                       "until exit; build it with protohost_add_plugin or -fno-gnu-unique");
  }
  loaded.emplace(path, lib);
  return lib;
}

std::vector<Server::Slot> Server::buildSlots(const HostConfig& config, const std::vector<Slot>* previous) {
  std::vector<std::string> errors;
  std::vector<Slot> out;
  std::map<std::string, std::shared_ptr<PluginLibrary>> loaded;
  auto findPrevious = [&](const std::string& name) -> const Slot* {
    if (!previous) return nullptr;
    for (const auto& s : *previous)
      if (s.spec.name == name) return &s;
    return nullptr;
  };
  for (const auto& spec : config.listeners) {
    const std::string path = config.pluginsDir + "/" + spec.plugin + ".so";
    std::shared_ptr<PluginLibrary> library;
    if (auto failure = invokeGuarded([&] { library = libraryFor(path, loaded); })) {
      errors.push_back(config.where(spec.pluginLine, "plugin") + *failure);
      continue;
    }
    if (spec.endpoint.isDatagram() && library->info().sdk_minor < 3) {
      // Factory::buildDatagramProtocol was appended in 1.3: an older factory's vtable has no such slot.
      errors.push_back(config.where(spec.listenLine, "listen") + "plugin " + spec.plugin + " is built against SDK " +
                       std::to_string(library->info().sdk_major) + "." + std::to_string(library->info().sdk_minor) +
                       "; a udp: listener needs a plugin built against SDK 1.3 or later (Factory::buildDatagramProtocol)");
      continue;
    }
    const Slot* prev = findPrevious(spec.name);
    if (prev && prev->runtime->library == library && sameSpec(prev->spec, spec)) {
      out.push_back(Slot{spec, prev->runtime, nullptr, nullptr, false, nullptr, nullptr});  // unchanged: keep it
      continue;
    }
    auto runtime = prev ? std::make_shared<ListenerRuntime>(prev->runtime->statsPtr) : std::make_shared<ListenerRuntime>();
    runtime->name = spec.name;
    runtime->pluginName = spec.plugin;
    runtime->factoryName = spec.factory;
    runtime->limits = spec.limits;
    runtime->host = hostCounters_;
    runtime->library = library;
    if (auto failure = invokeGuarded([&] { runtime->factory = library->createFactory(spec.factory); })) {
      errors.push_back(config.where(spec.factoryLine, "[listener." + spec.name + "] factory") + *failure);
      continue;
    }
    const std::string where = config.where(spec.line, "[listener." + spec.name + "]");
    std::optional<std::string> configError, stateError;  // the plugin's own verdicts (SDK exceptions)
    auto failure = invokeGuarded([&] {
      try {
        runtime->factory->configure(spec.pluginConfig);
      } catch (const ConfigError& e) {
        configError = e.what();
      } catch (const StateError& e) {
        stateError = e.what();
      }
    });
    if (stateError) throw StartupError(where + *stateError, exit_code::kDataErr);
    if (failure) {
      errors.push_back(where + "plugin " + spec.plugin + " rejected its configuration: " + *failure);
      continue;
    }
    if (configError) {
      errors.push_back(*configError);
      continue;
    }
    try {
      for (const auto& key : spec.pluginConfig.unreadKeys())
        spec.pluginConfig.fail(key, "unknown key for plugin " + spec.plugin + " (factory " + spec.factory + ")");
    } catch (const ConfigError& e) {
      errors.push_back(e.what());
      continue;
    }
    out.push_back(Slot{spec, std::move(runtime), nullptr, nullptr, false, nullptr, nullptr});
  }
  // TLS files are read on every start and reload, kept listener or not: a HUP
  // picks up renewed certificates; a broken one fails the reload, and the
  // running context keeps serving.
  for (auto& slot : out) {
    if (!slot.spec.endpoint.isTls()) continue;
    try {
      slot.tls = TlsServerContext::load(slot.spec.endpoint.tls, config.identity.uid);
    } catch (const TlsConfigError& e) {
      errors.push_back(config.where(slot.spec.listenLine, "listen") + e.what());
    }
  }
  if (config.admin) {
    ListenerSpec spec;
    spec.name = kAdminName;
    spec.plugin = kAdminName;
    spec.factory = kAdminName;
    spec.endpoint = *config.admin;
    spec.listenLine = config.adminLine;
    spec.limits.maxConnections = 64;
    spec.limits.idleTimeoutMs = 10000;
    const Slot* prev = findPrevious(kAdminName);
    if (prev && sameEndpoint(prev->spec.endpoint, spec.endpoint)) {
      out.push_back(Slot{spec, prev->runtime, nullptr, nullptr, false, nullptr, nullptr});
    } else {
      auto runtime = prev ? std::make_shared<ListenerRuntime>(prev->runtime->statsPtr) : std::make_shared<ListenerRuntime>();
      runtime->name = runtime->pluginName = runtime->factoryName = kAdminName;
      runtime->limits = spec.limits;
      runtime->host = nullptr;  // the admin endpoint does not count against max_connections
      runtime->factory = std::make_unique<AdminFactory>([this] { return metricsText(); }, [this] { return readiness(); });
      out.push_back(Slot{spec, std::move(runtime), nullptr, nullptr, false, nullptr, nullptr});
    }
  }
  if (!errors.empty()) {
    std::string all;
    for (const auto& e : errors) all += (all.empty() ? "" : "\n") + e;
    throw StartupError(all, exit_code::kConfig);
  }
  for (auto& [path, lib] : loaded) libraries_[path] = lib;
  return out;
}

std::vector<EventLoop*> Server::workerLoops() {
  std::vector<EventLoop*> loops;
  for (auto& l : loops_) loops.push_back(l.get());
  return loops;
}

EventLoop& Server::acceptLoop() { return acceptLoop_ ? *acceptLoop_ : *loops_[0]; }

void Server::load() { slots_ = buildSlots(config_, nullptr); }

void Server::startFactory(Slot& slot) {
  slot.context = std::make_unique<FactoryContextImpl>(slot.runtime, *loops_[0]);
  const auto& spec = slot.spec;
  const std::string where = config_.where(spec.line, "[listener." + spec.name + "]");
  std::optional<std::string> failure, stateError;
  runOn(*loops_[0], running_, [&] {
    failure = invokePluginCode(*loops_[0], slot.runtime.get(), [&] {
      try {
        slot.runtime->factory->start(*slot.context);
      } catch (const StateError& e) {
        stateError = e.what();
      }
    });
  });
  if (stateError) throw StartupError(where + *stateError, exit_code::kDataErr);
  if (failure) throw StartupError(where + "plugin " + spec.plugin + " failed to start: " + *failure, exit_code::kConfig);
  slot.started = true;
}

void Server::buildDatagramProtocol(Slot& slot) {
  const auto& spec = slot.spec;
  std::optional<std::string> failure;
  runOn(*loops_[0], running_, [&] {
    failure = invokePluginCode(*loops_[0], slot.runtime.get(),
                               [&] { slot.pendingProtocol = slot.runtime->factory->buildDatagramProtocol(); });
  });
  const std::string where = config_.where(spec.listenLine, "listen");
  if (failure)
    throw StartupError(where + "plugin " + spec.plugin + " buildDatagramProtocol threw: " + *failure, exit_code::kConfig);
  if (!slot.pendingProtocol)
    throw StartupError(where + "[listener." + spec.name + "]: plugin " + spec.plugin + " (factory " + spec.factory +
                           ") serves no datagrams (its buildDatagramProtocol returned nullptr); use a tcp: endpoint",
                       exit_code::kConfig);
}

void Server::logListening() const {
  for (const auto& slot : slots_)
    Log::instance().write(LogLevel::Info, "listener=" + slot.spec.name,
                          "listening on " + std::string(slot.datagram ? "udp:" : slot.tls ? "ssl:" : "") +
                              slot.boundEndpoint().toString() + " (plugin " + slot.runtime->pluginName +
                              ", factory " + slot.runtime->factoryName + ")" +
                              (slot.tls ? "; TLS: " + slot.tls->describe() : ""));
}

void Server::bindSlot(Slot& slot, int retries) {
  if (slot.spec.endpoint.isDatagram()) {
    // One socket on the first reactor, which also runs the factory's timers.
    slot.datagram = std::make_unique<DatagramListener>(slot.runtime, slot.spec.endpoint, *loops_[0]);
    slot.datagram->bind();
    return;
  }
  slot.listener = std::make_unique<Listener>(slot.runtime, slot.spec.endpoint, acceptLoop(), workerLoops());
  slot.listener->setTls(slot.tls);
  slot.listener->bind(retries);
}

void Server::stopFactory(const std::shared_ptr<ListenerRuntime>& runtime, bool started) {
  if (!started || !runtime->factory) return;
  if (auto failure = invokeGuarded([&] { runtime->factory->stop(); })) {
    runtime->stats.pluginErrors.fetch_add(1, std::memory_order_relaxed);
    Log::instance().write(LogLevel::Error, "listener=" + runtime->name,
                          "plugin " + runtime->pluginName + " factory stop threw: " + *failure);
  }
}

void Server::publishRuntimes() {
  std::vector<std::shared_ptr<ListenerRuntime>> list;
  for (const auto& s : slots_) list.push_back(s.runtime);
  std::lock_guard<std::mutex> lock(publishedMutex_);
  published_ = std::move(list);
}

void Server::start() {
  for (unsigned i = 0; i < config_.threads; ++i) loops_.push_back(std::make_unique<EventLoop>(i, "reactor-" + std::to_string(i)));
  if (config_.threads > 1) acceptLoop_ = std::make_unique<EventLoop>(config_.threads, "acceptor");
  std::vector<EventLoop*> loops = workerLoops();
  // Each reactor's connection set tells the drain (stop) when it becomes empty.
  for (auto* loop : loops)
    ConnectionSet::of(*loop).setOnEmpty([this] {
      std::lock_guard<std::mutex> lock(drainMutex_);  // the waiter tests its predicate under it: no lost wake-up
      drainCv_.notify_all();
    });
  // Before any plugin code runs: a factory's start() may defer work already.
  if (config_.workerThreads > 0) {
    workers_ = std::make_unique<WorkerPool>(config_.workerThreads, config_.workerQueue);
    for (auto* loop : loops) loop->setWorkerPool(workers_.get());
    if (acceptLoop_) acceptLoop_->setWorkerPool(workers_.get());
  }

  // Bind everything before starting anything: a port in use fails the whole start.
  // Sockets handed over by systemd (LISTEN_FDS) are used instead of binding.
  std::vector<InheritedSocket> inherited;
  try {
    inherited = takeInheritedSockets();
  } catch (const std::exception& e) {
    throw StartupError(e.what(), exit_code::kConfig);
  }
  for (auto& slot : slots_) {
    // Socket activation hands over stream sockets only (takeInheritedSockets refuses others).
    auto match = slot.spec.endpoint.isDatagram()
                     ? inherited.end()
                     : std::find_if(inherited.begin(), inherited.end(),
                                    [&](const InheritedSocket& s) { return s.address == slot.spec.endpoint.toString(); });
    if (match != inherited.end()) {
      slot.listener = std::make_unique<Listener>(slot.runtime, slot.spec.endpoint, acceptLoop(), loops);
      slot.listener->setTls(slot.tls);
      try {
        slot.listener->adopt(match->fd);
      } catch (const std::exception& e) {
        throw StartupError(config_.where(slot.spec.listenLine, "listen") + e.what(), exit_code::kConfig);
      }
      Log::instance().write(LogLevel::Info, "listener=" + slot.spec.name, "using socket " + match->address + " from socket activation");
      inherited.erase(match);
      continue;
    }
    try {
      bindSlot(slot, config_.bindRetries);
    } catch (const std::exception& e) {
      throw StartupError(config_.where(slot.spec.listenLine, "listen") + e.what(), exit_code::kConfig);
    }
  }
  for (const auto& s : inherited) {
    Log::instance().write(LogLevel::Warning, "", "socket activation passed " + s.address + ", which no listener uses; closing it");
    ::close(s.fd);
  }
  // Bound (ports < 1024 included): now give up root, before any plugin code runs at start.
  std::string why;
  if (!dropPrivileges(config_.identity, why)) throw StartupError(config_.path + ": user: " + why, exit_code::kConfig);
  if (!config_.identity.user.empty()) {
    // A reload (HUP) re-reads the config and loads plugins as this user: refuse now what would fail then.
    if (std::string unreachable = checkReachable(pathsNeededForReload(config_)); !unreachable.empty())
      throw StartupError(config_.path + ": user: " + config_.identity.user + " (uid " + std::to_string(config_.identity.uid) +
                             ") could not reload the configuration: " + unreachable +
                             "; give that user access, or move the files",
                         exit_code::kConfig);
    Log::instance().write(LogLevel::Info, "", "running as user " + config_.identity.user + " (uid " +
                                                  std::to_string(config_.identity.uid) + ", gid " + std::to_string(config_.identity.gid) + ")");
  }
  for (auto& slot : slots_) {
    startFactory(slot);
    if (slot.datagram) buildDatagramProtocol(slot);
  }
  for (auto& slot : slots_) {
    if (slot.datagram) slot.datagram->serve(slot.runtime, std::move(slot.pendingProtocol));  // loops not running yet
    else slot.listener->startAccepting();
  }
  for (auto& loop : loops_) loop->startThread();
  if (acceptLoop_) acceptLoop_->startThread();
  running_ = true;
  if (acceptLoop_) loops.push_back(acceptLoop_.get());
  if (config_.watchdogMs > 0)
    watchdog_ = std::make_unique<Watchdog>(loops, std::chrono::milliseconds(config_.watchdogMs), config_.watchdogAbort,
                                           hostStats_.watchdogMisses);
  publishRuntimes();
  logListening();
}

void Server::reload(HostConfig next) {
  if (next.threads != config_.threads) {
    Log::instance().write(LogLevel::Warning, "", "threads changed from " + std::to_string(config_.threads) + " to " +
                                                     std::to_string(next.threads) + ": takes effect at the next restart");
    next.threads = config_.threads;
  }
  if (next.workerThreads != config_.workerThreads || next.workerQueue != config_.workerQueue) {
    Log::instance().write(LogLevel::Warning, "", "worker_threads/worker_queue changed: takes effect at the next restart");
    next.workerThreads = config_.workerThreads;
    next.workerQueue = config_.workerQueue;
  }
  // Every wait below is recorded: a TERM that comes meanwhile is bounded all the same (freezeStop).
  recordWait("applying a reload (loading and configuring its plugins)", nullptr, nullptr);
  OnExit clearWait{[this] { recordWait("", nullptr, nullptr); }};
  std::vector<Slot> fresh = buildSlots(next, &slots_);

  // Which old slot's socket each new slot takes over (kept runtimes keep theirs).
  std::vector<Slot*> takeFrom(fresh.size(), nullptr);
  std::vector<bool> taken(slots_.size(), false);
  for (std::size_t i = 0; i < fresh.size(); ++i) {
    for (std::size_t j = 0; j < slots_.size() && !takeFrom[i]; ++j) {
      if (taken[j]) continue;
      bool sameRuntime = slots_[j].runtime == fresh[i].runtime;
      bool samePlace = sameEndpoint(slots_[j].spec.endpoint, fresh[i].spec.endpoint) &&
                       (slots_[j].spec.name == fresh[i].spec.name || fresh[i].spec.endpoint.port != 0);
      if (sameRuntime || samePlace) {
        takeFrom[i] = &slots_[j];
        taken[j] = true;
      }
    }
  }
  // Bind what is new; on failure nothing of the running config has changed.
  for (std::size_t i = 0; i < fresh.size(); ++i) {
    if (takeFrom[i]) continue;
    try {
      // No retry here: this runs on the main thread, which must stay free to
      // handle TERM, and a failed reload keeps the old configuration serving.
      bindSlot(fresh[i], 0);
    } catch (const std::exception& e) {
      for (auto& s : fresh) {
        if (s.listener) s.listener->close();
        if (s.datagram) s.datagram->close();  // never served: no protocol, no loop registration
      }
      throw StartupError(next.where(fresh[i].spec.listenLine, "listen") + e.what(), exit_code::kConfig);
    }
  }
  // Start the new factories (kept ones are running already).
  HostConfig previousConfig = std::move(config_);
  config_ = std::move(next);
  try {
    recordWait("applying a reload (starting its new factories)", loops_[0].get(), nullptr);
    for (std::size_t i = 0; i < fresh.size(); ++i) {
      if (takeFrom[i] && takeFrom[i]->runtime == fresh[i].runtime) continue;
      startFactory(fresh[i]);
      if (fresh[i].spec.endpoint.isDatagram()) buildDatagramProtocol(fresh[i]);
    }
  } catch (...) {
    runOnRecorded(*loops_[0], "applying a reload (stopping the factories it started)", [&] {
      for (auto& s : fresh) {
        bool kept = false;
        for (auto& old : slots_) kept = kept || old.runtime == s.runtime;
        if (kept) continue;
        {
          PluginCallScope scope(*loops_[0], s.runtime.get());
          s.pendingProtocol.reset();  // a factory stops after the protocols it built are gone
        }
        stopFactory(s.runtime, s.started);
        if (s.context) s.context->cancelTimers();
      }
    });
    for (auto& s : fresh) {
      if (s.listener) s.listener->close();
      if (s.datagram) s.datagram->close();
    }
    config_ = std::move(previousConfig);
    throw;
  }
  // Swap on the accept loop: accepts never see a half-applied config.
  runOnRecorded(acceptLoop(), "applying a reload (swapping it in)", [&] {
    for (std::size_t i = 0; i < fresh.size(); ++i) {
      if (Slot* old = takeFrom[i]) {
        fresh[i].listener = std::move(old->listener);
        fresh[i].datagram = std::move(old->datagram);  // served below, on its own loop
        if (old->runtime == fresh[i].runtime) {
          fresh[i].context = std::move(old->context);
          fresh[i].started = old->started;
          old->runtime = nullptr;  // not retired: it lives on
        } else if (fresh[i].listener) {
          fresh[i].listener->setRuntime(fresh[i].runtime);
        }
        if (fresh[i].listener) fresh[i].listener->setTls(fresh[i].tls);  // new connections: the reloaded certificates
      } else if (fresh[i].listener) {
        fresh[i].listener->startAccepting();
      }
    }
    for (auto& old : slots_)
      if (old.listener) old.listener->close();  // removed endpoints: refuse from now on
  });
  // udp: listeners on the first reactor: a kept socket gets the new factory's
  // protocol (the old one is stopped first), a new one starts reading, a
  // removed one stops its protocol and closes.
  runOnRecorded(*loops_[0], "applying a reload (swapping its datagram protocols in)", [&] {
    for (auto& s : fresh)
      if (s.datagram && s.pendingProtocol) s.datagram->serve(s.runtime, std::move(s.pendingProtocol));
    for (auto& old : slots_)
      if (old.datagram) old.datagram->close();
  });
  // Removed listeners' connections are asked to finish; replaced ones keep serving with the old code.
  for (auto& old : slots_) {
    if (!old.runtime) continue;
    bool nameStays = false;
    for (const auto& s : fresh) nameStays = nameStays || s.spec.name == old.spec.name;
    if (!nameStays) {
      for (auto& loop : loops_)
        runOnRecorded(*loop, "applying a reload (asking listener " + old.spec.name + "'s connections to finish)",
                      [&, rt = static_cast<const ConnectionOwner*>(old.runtime.get())] {
                        ConnectionSet::of(*loop).requestStop([rt](const ConnectionOwner& r) { return &r == rt; });
                      });
    }
    retired_.push_back(Retired{std::move(old.runtime), std::move(old.context), old.started});
  }
  slots_ = std::move(fresh);
  hostCounters_->maxConnections.store(config_.maxConnections, std::memory_order_relaxed);
  publishRuntimes();
  logListening();
  collectRetired();
}

void Server::collectRetired() {
  for (auto it = retired_.begin(); it != retired_.end();) {
    // Only this list holds it: every connection made with it has ended, but
    // for outbound ones, which its factory's (closed below) may be.
    // (Conservative: a holder counts in use_count before outboundHolders.)
    if (it->runtime.use_count() > 1 + static_cast<long>(it->runtime->outboundHolders.load())) {
      ++it;
      continue;
    }
    Log::instance().write(LogLevel::Debug, "listener=" + it->runtime->name,
                          "last connection of the previous configuration ended: releasing it");
    const std::string what = "releasing the previous configuration of listener " + it->runtime->name;
    runOnRecorded(*loops_[0], what, [&] {
      PluginCallScope scope(*loops_[0], it->runtime.get());
      stopFactory(it->runtime, it->started);
      if (it->context) it->context->cancelTimers();
    });
    // Let every loop run what the old factory may have posted before it stopped.
    for (auto& loop : loops_) runOnRecorded(*loop, what, [] {});
    Log::instance().write(LogLevel::Info, "listener=" + it->runtime->name,
                          "previous configuration of this listener released (plugin " + it->runtime->pluginName + ")");
    it = retired_.erase(it);
  }
  // Libraries no runtime uses any more are unloaded here, on the main thread.
  for (auto it = libraries_.begin(); it != libraries_.end();)
    it = it->second.use_count() == 1 ? libraries_.erase(it) : std::next(it);
}

std::string Server::metricsText() {
  std::vector<std::shared_ptr<ListenerRuntime>> runtimes;
  {
    std::lock_guard<std::mutex> lock(publishedMutex_);
    runtimes = published_;
  }
  std::vector<ListenerFigures> list;
  list.reserve(runtimes.size());
  for (const auto& r : runtimes) list.push_back(ListenerFigures{r->name, r->pluginName, r->statsPtr, r->factoryReady()});
  WorkerFigures workers;
  if (workers_) {
    const WorkerPool::Figures f = workers_->figures();
    workers = WorkerFigures{f.queued, f.running, f.rejected, f.completed};
  }
  return renderMetrics(list, hostStats_, workers);
}

std::string Server::readiness() {
  if (draining_) return "draining";
  std::vector<std::shared_ptr<ListenerRuntime>> list;
  {
    std::lock_guard<std::mutex> lock(publishedMutex_);
    list = published_;
  }
  std::string why;
  for (const auto& r : list)
    if (r->factory && !r->factoryReady()) why += (why.empty() ? "" : ", ") + ("listener " + r->name);
  return why;
}

void Server::recordWait(std::string what, EventLoop* loop, const ListenerRuntime* factory) {
  std::lock_guard<std::mutex> lock(waitMutex_);  // blocks for good once freezeStop() ran
  waitWhat_ = std::move(what);
  waitLoop_ = loop;
  waitFactory_ = factory;
}

void Server::runOnRecorded(EventLoop& loop, std::string what, const std::function<void()>& fn) {
  recordWait(std::move(what), &loop, nullptr);
  OnExit clear{[this] { recordWait("", nullptr, nullptr); }};
  runOn(loop, running_, fn);
}

std::optional<std::string> Server::freezeStop() {
  // Locked and never unlocked (unless stop() has finished): the main thread
  // waits at its next recordWait from now on, so the loop and the runtimes
  // named here stay alive (they are destroyed only after further steps). The
  // caller ends the process.
  waitMutex_.lock();
  if (stopFinished_) {
    waitMutex_.unlock();
    return std::nullopt;
  }
  if (waitFactory_) return "listener " + waitFactory_->name + ": factory stop() did not return";
  if (!waitLoop_) return "the main thread did not finish " + (waitWhat_.empty() ? std::string("the stop") : waitWhat_);
  const auto* blocking = dynamic_cast<const ConnectionOwner*>(waitLoop_->runningPlugin());
  return (blocking ? "listener " + blocking->name + ": " + waitLoop_->name() + " (in plugin code)"
                   : waitLoop_->name() + " (not in plugin code)") +
         " did not finish " + waitWhat_;
}

void Server::stopWorkers(std::chrono::steady_clock::time_point deadline) {
  if (!workers_) return;
  recordWait("waiting for the worker threads' running work", nullptr, nullptr);
  if (const std::size_t left = workers_->stop(deadline))
    Log::instance().write(LogLevel::Warning, "", std::to_string(left) +
                                                     " worker job(s) still running at the drain deadline: abandoned "
                                                     "(their done is not called)");
}

std::size_t Server::openConnections() const {
  std::size_t n = 0;
  for (auto& loop : loops_) {
    const ConnectionSet& set = ConnectionSet::of(*loop);
    n += set.size() + set.lingering();
  }
  return n;
}

void Server::stop(std::chrono::milliseconds drainTimeout) {
  if (loops_.empty() && slots_.empty() && libraries_.empty()) return;
  const DisconnectReason shutdown{DisconnectReason::Kind::Shutdown, "host shutting down"};
  watchdog_.reset();
  const auto drainDeadline = std::chrono::steady_clock::now() + drainTimeout;
  if (running_) {
    draining_ = true;
    // 1. Stop accepting: new connects are refused from here on.
    recordWait("closing the listeners", &acceptLoop(), nullptr);
    acceptLoop().runAndWait([this] {
      for (auto& s : slots_)
        if (s.listener) s.listener->close();
    });
    // udp: sockets stop reading at once (a datagram has nothing in flight to drain).
    recordWait("closing the datagram listeners", loops_[0].get(), nullptr);
    loops_[0]->runAndWait([this] {
      for (auto& s : slots_)
        if (s.datagram) s.datagram->close();
    });
    // 2. Drain: protocols finish what is in flight and close, until the deadline.
    if (drainTimeout.count() > 0) {
      recordWait("draining", nullptr, nullptr);
      // Posted, not waited for: a blocked reactor must not hold up the others' drain.
      for (auto& loop : loops_)
        loop->post([l = loop.get()] { ConnectionSet::of(*l).requestStop([](const ConnectionOwner&) { return true; }); });
      {
        // Each set signals drainCv_ as it becomes empty (setOnEmpty in start()).
        std::unique_lock<std::mutex> lock(drainMutex_);
        drainCv_.wait_until(lock, drainDeadline, [this] { return openConnections() == 0; });
      }
      if (openConnections() > 0) {
        std::size_t connections = 0, lingering = 0;
        for (auto& loop : loops_) {
          connections += ConnectionSet::of(*loop).size();
          lingering += ConnectionSet::of(*loop).lingering();
        }
        Log::instance().write(LogLevel::Warning, "", "drain timeout: closing " + std::to_string(connections) +
                                                         " connection(s) and " + std::to_string(lingering) +
                                                         " socket(s) in lingering close");
      }
    }
    // 2b. Worker pool: queued work is dropped, running work gets what is left of the drain
    // bound (its done still runs while the reactors do), so the stop stays within it.
    stopWorkers(drainDeadline);
    // 3. Close every remaining connection on its own thread (connectionLost runs there).
    for (auto& loop : loops_) {
      recordWait("closing its connections", loop.get(), nullptr);
      loop->runAndWait([&] { ConnectionSet::of(*loop).closeAll(shutdown); });
    }
    // 4. Stop the reactors.
    if (acceptLoop_) {
      recordWait("stopping", acceptLoop_.get(), nullptr);
      acceptLoop_->stopAndJoin();
    }
    for (auto& loop : loops_) {
      recordWait("stopping", loop.get(), nullptr);
      loop->stopAndJoin();
    }
    running_ = false;
  } else {
    for (auto& s : slots_) {
      if (s.listener) s.listener->close();
      if (s.datagram) s.datagram->close();
    }
  }
  {
    std::lock_guard<std::mutex> lock(publishedMutex_);
    published_.clear();
  }
  // 5. Factories persist state and cancel their timers (reactors are stopped: main thread).
  for (auto& s : slots_) {
    s.listener.reset();
    s.datagram.reset();
    s.pendingProtocol.reset();  // built by a start that failed before serving it
    recordWait("", nullptr, s.runtime.get());
    stopFactory(s.runtime, s.started);
    if (s.context) s.context->cancelTimers();
  }
  for (auto& r : retired_) {
    recordWait("", nullptr, r.runtime.get());
    stopFactory(r.runtime, r.started);
    if (r.context) r.context->cancelTimers();
  }
  // 6. Drop every callback a plugin may have left queued, while its code is mapped
  // (no worker posts any more: the pool has stopped).
  stopWorkers(std::chrono::steady_clock::now());
  recordWait("releasing the reactors", nullptr, nullptr);
  for (auto& loop : loops_) loop->clearCallbacks();
  if (acceptLoop_) acceptLoop_->clearCallbacks();
  acceptLoop_.reset();
  loops_.clear();
  // 7. Factories, then libraries (ListenerRuntime destroys its factory first).
  recordWait("destroying the factories and unloading the plugins", nullptr, nullptr);
  slots_.clear();
  retired_.clear();
  libraries_.clear();
  std::lock_guard<std::mutex> lock(waitMutex_);  // blocks for good once freezeStop() ran: then it is not finished
  waitWhat_.clear();
  waitLoop_ = nullptr;
  stopFinished_ = true;
}

}  // namespace protohost::host
