#include "Server.h"

#include <sstream>
#include <thread>

#include "ExitCodes.h"
#include "Log.h"

namespace protohost::host {

// What a factory gets for its lifetime: its name, a logger and the first
// reactor, whose callbacks run inside an exception boundary that logs with
// the listener and plugin names instead of unwinding the reactor.
class FactoryContextImpl final : public FactoryContext {
 public:
  FactoryContextImpl(ListenerRuntime& runtime, EventLoop& loop)
      : runtime_(runtime), reactor_(runtime, loop), logger_("listener=" + runtime.name) {}
  const std::string& listenerName() const override { return runtime_.name; }
  Reactor& reactor() override { return reactor_; }
  Logger& logger() override { return logger_; }

 private:
  class GuardedReactor final : public Reactor {
   public:
    GuardedReactor(ListenerRuntime& runtime, EventLoop& loop) : runtime_(runtime), loop_(loop) {}
    TimerId callLater(std::chrono::milliseconds d, Callback fn) override { return loop_.callLater(d, guard(std::move(fn))); }
    TimerId callEvery(std::chrono::milliseconds i, Callback fn) override { return loop_.callEvery(i, guard(std::move(fn))); }
    bool cancel(TimerId id) override { return loop_.cancel(id); }
    Clock::time_point now() const override { return loop_.now(); }
    void post(Callback fn) override { loop_.post(guard(std::move(fn))); }

   private:
    Callback guard(Callback fn) {
      return [this, fn = std::move(fn)] {
        try {
          fn();
        } catch (const std::exception& e) {
          fail(e.what());
        } catch (...) {
          fail("non-standard exception");
        }
      };
    }
    void fail(const std::string& what) {
      runtime_.stats.pluginErrors.fetch_add(1, std::memory_order_relaxed);
      Log::instance().write(LogLevel::Error, "listener=" + runtime_.name,
                            "plugin " + runtime_.pluginName + " factory callback threw: " + what);
    }
    ListenerRuntime& runtime_;
    EventLoop& loop_;
  };

  ListenerRuntime& runtime_;
  GuardedReactor reactor_;
  ContextLogger logger_;
};

Server::Server(HostConfig config) : config_(std::move(config)), hostCounters_(std::make_shared<HostCounters>()) {
  hostCounters_->maxConnections = config_.maxConnections;
}

Server::~Server() { stop(); }

void Server::load() {
  std::vector<std::string> errors;
  for (const auto& spec : config_.listeners) {
    const std::string path = config_.pluginsDir + "/" + spec.plugin + ".so";
    std::shared_ptr<PluginLibrary> library;
    auto it = libraries_.find(path);
    if (it != libraries_.end()) {
      library = it->second;
    } else {
      try {
        library = PluginLibrary::load(path);
        libraries_.emplace(path, library);
      } catch (const PluginError& e) {
        errors.push_back(config_.where(spec.pluginLine, "plugin") + e.what());
        continue;
      }
    }
    auto runtime = std::make_shared<ListenerRuntime>();
    runtime->name = spec.name;
    runtime->pluginName = spec.plugin;
    runtime->factoryName = spec.factory;
    runtime->limits = spec.limits;
    runtime->host = hostCounters_;
    runtime->library = library;
    try {
      runtime->factory = library->createFactory(spec.factory);
    } catch (const PluginError& e) {
      errors.push_back(config_.where(spec.factoryLine, "factory") + e.what());
      continue;
    }
    try {
      runtime->factory->configure(spec.pluginConfig);
      for (const auto& key : spec.pluginConfig.unreadKeys())
        spec.pluginConfig.fail(key, "unknown key for plugin " + spec.plugin + " (factory " + spec.factory + ")");
    } catch (const ConfigError& e) {
      errors.push_back(e.what());
      continue;
    } catch (const StateError& e) {
      throw StartupError(config_.where(spec.line, "[listener." + spec.name + "]") + e.what(), exit_code::kDataErr);
    } catch (const std::exception& e) {
      errors.push_back(config_.where(spec.line, "[listener." + spec.name + "]") + "plugin " + spec.plugin +
                       " rejected its configuration: " + e.what());
      continue;
    }
    runtimes_.push_back(std::move(runtime));
  }
  if (!errors.empty()) {
    std::string all;
    for (const auto& e : errors) all += (all.empty() ? "" : "\n") + e;
    throw StartupError(all, exit_code::kConfig);
  }
}

void Server::start() {
  for (unsigned i = 0; i < config_.threads; ++i) loops_.push_back(std::make_unique<EventLoop>(i));
  std::vector<EventLoop*> loops;
  for (auto& l : loops_) loops.push_back(l.get());

  // Bind everything before starting anything: a port in use fails the whole start.
  for (std::size_t i = 0; i < runtimes_.size(); ++i) {
    const ListenerSpec& spec = config_.listeners[i];
    auto listener = std::make_unique<Listener>(runtimes_[i], spec.endpoint, loops);
    try {
      listener->bind();
    } catch (const std::exception& e) {
      throw StartupError(config_.where(spec.listenLine, "listen") + e.what(), exit_code::kConfig);
    }
    listeners_.push_back(std::move(listener));
  }
  for (std::size_t i = 0; i < runtimes_.size(); ++i) {
    auto context = std::make_unique<FactoryContextImpl>(*runtimes_[i], *loops_[0]);
    try {
      runtimes_[i]->factory->start(*context);
    } catch (const StateError& e) {
      throw StartupError(config_.where(config_.listeners[i].line, "[listener." + runtimes_[i]->name + "]") + e.what(),
                         exit_code::kDataErr);
    } catch (const std::exception& e) {
      throw StartupError(config_.where(config_.listeners[i].line, "[listener." + runtimes_[i]->name + "]") +
                             "plugin " + runtimes_[i]->pluginName + " failed to start: " + e.what(),
                         exit_code::kSoftware);
    }
    contexts_.push_back(std::move(context));
    startedFactories_.push_back(i);
  }
  for (auto& listener : listeners_) listener->startAccepting();
  for (auto& loop : loops_) loop->startThread();
  running_ = true;
  for (std::size_t i = 0; i < listeners_.size(); ++i)
    Log::instance().write(LogLevel::Info, "listener=" + runtimes_[i]->name,
                          "listening on " + listeners_[i]->endpoint().toString() + " (plugin " +
                              runtimes_[i]->pluginName + ", factory " + runtimes_[i]->factoryName + ")");
}

void Server::stop(std::chrono::milliseconds drainTimeout) {
  if (loops_.empty() && runtimes_.empty() && libraries_.empty()) return;
  const DisconnectReason shutdown{DisconnectReason::Kind::Shutdown, "host shutting down"};
  if (running_) {
    draining_ = true;
    // 1. Stop accepting: new connects are refused from here on.
    loops_[0]->runAndWait([this] {
      for (auto& l : listeners_) l->close();
    });
    // 2. Drain: protocols finish what is in flight and close, until the deadline.
    if (drainTimeout.count() > 0) {
      for (auto& loop : loops_) loop->runAndWait([&] { loop->requestStopAll(); });
      const auto deadline = std::chrono::steady_clock::now() + drainTimeout;
      auto open = [this] {
        std::size_t n = 0;
        for (auto& loop : loops_) n += loop->connectionCount();
        return n;
      };
      while (open() > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      if (std::size_t left = open())
        Log::instance().write(LogLevel::Warning, "", "drain timeout: closing " + std::to_string(left) + " connection(s)");
    }
    // 3. Close every remaining connection on its own thread (connectionLost runs there).
    for (auto& loop : loops_) loop->runAndWait([&] { loop->closeAllConnections(shutdown); });
    // 4. Stop the reactors.
    for (auto& loop : loops_) loop->stopAndJoin();
    running_ = false;
  } else {
    for (auto& l : listeners_) l->close();
  }
  listeners_.clear();
  // 5. Factories persist state and cancel their timers.
  for (auto i : startedFactories_) {
    try {
      runtimes_[i]->factory->stop();
    } catch (const std::exception& e) {
      Log::instance().write(LogLevel::Error, "listener=" + runtimes_[i]->name, std::string("factory stop threw: ") + e.what());
    }
  }
  startedFactories_.clear();
  // 6. Drop every callback a plugin may have left queued, while its code is mapped.
  for (auto& loop : loops_) loop->clearCallbacks();
  loops_.clear();
  contexts_.clear();
  // 7. Factories, then libraries (ListenerRuntime destroys its factory first).
  runtimes_.clear();
  libraries_.clear();
}

}  // namespace protohost::host
