#include "HostApplication.h"

#include <Poco/Util/HelpFormatter.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionException.h>
#include <Poco/Util/OptionProcessor.h>
#include <Poco/Util/OptionSet.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <optional>

#include "base/ExitCodes.h"
#include "config/HostConfig.h"
#include "base/Log.h"
#include "base/PluginCall.h"
#include "plugin/PluginLibrary.h"
#include "Server.h"
#include "ops/SignalThread.h"
#include "ops/StopDeadline.h"
#include "protohost/Version.h"

#ifndef PROTOHOST_VERSION
#define PROTOHOST_VERSION "0.0.0"
#endif

namespace protohost::host {
namespace fs = std::filesystem;
using Poco::Util::Option;

namespace {
// What a TERM may take beyond drain_timeout_ms to close, stop and release
// (StopDeadline then ends the process; its last log line gets 0.5 s more).
constexpr std::chrono::milliseconds kStopGrace{2000};
using Clock = std::chrono::steady_clock;

// SIGUSR1: reopen the log file (after logrotate moved it).
void reopenLog() {
  std::string why;
  if (Log::instance().filePath().empty())
    Log::instance().write(LogLevel::Info, "", "SIGUSR1 received: logging to stderr, nothing to reopen");
  else if (Log::instance().reopen(why))
    Log::instance().write(LogLevel::Info, "", "SIGUSR1 received: log file reopened");
  else
    Log::instance().write(LogLevel::Error, "", "SIGUSR1: cannot reopen log file, keeping the old one: " + why);
}
}  // namespace

HostApplication::HostApplication(std::string startDir) : startDir_(std::move(startDir)) {
  setUnixOptions(true);
}

void restoreCrashSignals() {
  for (int s : {SIGILL, SIGBUS, SIGSEGV, SIGSYS}) ::signal(s, SIG_DFL);
}

int HostApplication::validateArguments(int argc, char** argv) {
  Poco::Util::OptionSet set;
  defineOptions(set);
  Poco::Util::OptionProcessor processor(set);
  processor.setUnixStyle(true);
  try {
    for (int i = 1; i < argc; ++i) {
      std::string name, value;
      processor.process(argv[i], name, value);
    }
    processor.checkRequired();
  } catch (const Poco::Util::OptionException& e) {
    std::cerr << "host: " << e.displayText() << " (see host --help)\n";
    return exit_code::kUsage;
  }
  return 0;
}

void HostApplication::defineOptions(Poco::Util::OptionSet& options) {
  ServerApplication::defineOptions(options);  // --daemon, --umask, --pidfile
  options.addOption(Option("config", "c", "configuration file (INI)").required(false).repeatable(false).argument("FILE"));
  options.addOption(Option("check-config", "t", "validate the configuration and the plugins it names, then exit"));
  options.addOption(Option("list-plugins", "l", "list the plugins in plugins_dir with their factories and SDK version"));
  options.addOption(Option("version", "v", "print the version and exit"));
  options.addOption(Option("help", "h", "print this help and exit"));
}

void HostApplication::handleOption(const std::string& name, const std::string& value) {
  ServerApplication::handleOption(name, value);
  if (name == "config") configPath_ = value;
  else if (name == "check-config") checkConfig_ = true;
  else if (name == "list-plugins") listPlugins_ = true;
  else if (name == "version") version_ = true;
  else if (name == "help") help_ = true;
  if (help_ || version_) stopOptionsProcessing();
}

int HostApplication::main(const std::vector<std::string>& args) {
  restoreCrashSignals();  // again: Poco's init() may have installed its handler after construction
  if (help_) {
    Poco::Util::HelpFormatter help(options());
    help.setCommand("host");
    help.setUsage("--config FILE [--check-config | --list-plugins | --daemon --pidfile FILE]");
    help.setHeader("protohost: a protocol host that serves plugins (shared libraries) on the ports its config names.");
    help.setFooter("Signals: TERM/INT/QUIT drain and stop; HUP reloads the config in place (an invalid one is "
                   "rejected and the old one keeps serving); USR1 reopens log_file. Exit codes: 0 ok, 64 usage, "
                   "65 corrupt plugin state, 66 config missing, 70 internal error or a stop that did not finish "
                   "within drain_timeout_ms + 2.5 s, 78 bad config/plugin/port.");
    help.format(std::cout);
    return exit_code::kOk;
  }
  if (version_) {
    std::cout << "protohost " << PROTOHOST_VERSION << " (SDK " << PROTOHOST_SDK_VERSION_MAJOR << "."
              << PROTOHOST_SDK_VERSION_MINOR << ", " << PROTOHOST_COMPILER_TAG << ")\n";
    return exit_code::kOk;
  }
  if (!args.empty()) {
    std::cerr << "host: unexpected argument \"" << args.front() << "\" (see host --help)\n";
    return exit_code::kUsage;
  }
  if (configPath_.empty()) {
    std::cerr << "host: missing --config FILE (see host --help)\n";
    return exit_code::kUsage;
  }
  configDisplay_ = configPath_;
  if (fs::path(configPath_).is_relative()) configPath_ = (fs::path(startDir_) / configPath_).lexically_normal().string();
  if (listPlugins_) return listPlugins();
  return serve();
}

int HostApplication::listPlugins() {
  HostConfig config;
  try {
    config = loadHostConfig(configPath_, configDisplay_);
  } catch (const ConfigUnreadable& e) {
    std::cerr << e.what() << "\n";
    return exit_code::kNoInput;
  } catch (const ConfigInvalid& e) {
    std::cerr << e.what() << "\n";
    return exit_code::kConfig;
  }
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(config.pluginsDir, ec))
    if (entry.path().extension() == ".so") files.push_back(entry.path());
  if (ec) {
    std::cerr << config.pluginsDir << ": " << ec.message() << "\n";
    return exit_code::kConfig;
  }
  std::sort(files.begin(), files.end());
  int status = exit_code::kOk;
  for (const auto& file : files) {
    try {
      auto lib = PluginLibrary::load(file.string());
      std::string factories;
      for (const auto& f : lib->factoryNames()) factories += (factories.empty() ? "" : ",") + f;
      std::cout << file.stem().string() << "\tfactories=" << factories << "\tsdk=" << lib->info().sdk_major << "."
                << lib->info().sdk_minor << "\tcompiler=" << lib->info().compiler << "\t" << file.string() << "\n";
    } catch (const PluginError& e) {
      std::cout << file.stem().string() << "\tREFUSED: " << e.what() << "\n";
      status = exit_code::kConfig;
    }
  }
  return status;
}

void HostApplication::reload(Server& server) {
  Log::instance().write(LogLevel::Info, "", "SIGHUP received: reloading " + configDisplay_);
  auto fail = [&](const std::string& why) {
    server.stats().reloadFailures.fetch_add(1);
    server.stats().lastReloadOk = false;
    for (std::size_t start = 0; start < why.size();) {
      auto end = why.find('\n', start);
      if (end == std::string::npos) end = why.size();
      Log::instance().write(LogLevel::Error, "", "reload rejected, old configuration kept: " + why.substr(start, end - start));
      start = end + 1;
    }
  };
  HostConfig next;
  try {
    next = loadHostConfig(configPath_, configDisplay_);
  } catch (const std::exception& e) {
    fail(e.what());
    return;
  }
  const std::string oldLogFile = server.config().logFile;
  try {
    server.reload(next);
  } catch (const StartupError& e) {
    fail(e.what());
    return;
  } catch (...) {  // not from a plugin (those are StartupErrors by now): still only this reload fails
    fail("internal error: " + describeCurrentException());
    return;
  }
  Log::instance().setLevel(next.logLevel);
  if (next.logFile != oldLogFile) {
    std::string why;
    if (!Log::instance().openFile(next.logFile, why))
      Log::instance().write(LogLevel::Error, "", "log_file: cannot open " + why + "; keeping the old log");
  }
  server.stats().reloads.fetch_add(1);
  server.stats().lastReloadOk = true;
  Log::instance().write(LogLevel::Info, "", "configuration reloaded");
}

int HostApplication::serve() {
  HostConfig config;
  try {
    config = loadHostConfig(configPath_, configDisplay_);
  } catch (const ConfigUnreadable& e) {
    std::cerr << "host: " << e.what() << "\n";
    return exit_code::kNoInput;
  } catch (const ConfigInvalid& e) {
    std::cerr << e.what() << "\n";
    return exit_code::kConfig;
  }
  Log::instance().setLevel(config.logLevel);
  if (!checkConfig_) {
    std::string why;
    if (!Log::instance().openFile(config.logFile, why)) {
      std::cerr << config.path << ": log_file: cannot open " << why << "\n";
      return exit_code::kConfig;
    }
  }
  Server server(config);
  try {
    server.load();
    if (checkConfig_) {
      std::cout << config.path << ": configuration ok (" << config.listeners.size() << " listeners)\n";
      return exit_code::kOk;
    }
    // From here on no thread waits for the log's output (main() flushes it before exiting).
    Log::instance().startWriter();
    server.start();
  } catch (const StartupError& e) {
    std::cerr << e.what() << "\n";
    server.stop();
    return e.exitCode();
  } catch (...) {
    std::cerr << "host: internal error at start: " << describeCurrentException() << "\n";
    server.stop();
    return exit_code::kSoftware;
  }
  Log::instance().write(LogLevel::Info, "", "protohost " PROTOHOST_VERSION " started, pid " + std::to_string(::getpid()) +
                                                ", " + std::to_string(config.threads) + " reactor thread(s)");

  // The signals were blocked in main() before any thread started, so every
  // thread inherits the mask and only the signal thread receives them. A stop
  // signal arms the deadline there at once: the main thread may be waiting on
  // a reactor that a plugin blocks (a reload, releasing a replaced listener).
  // Whatever plugins do, the process ends within drain_timeout_ms + kStopGrace of it.
  std::atomic<int> drainMs{server.config().drainTimeoutMs};  // the signal thread reads them; main writes them
  std::atomic<int> delayMs{server.config().drainDelayMs};
  std::optional<StopDeadline> deadline;                       // armed by the signal thread, before the signal is queued
  Clock::time_point stopRequested;
  SignalThread signals([&](int sig) {
    const std::chrono::milliseconds drain(drainMs.load()), delay(delayMs.load());
    stopRequested = Clock::now();
    // With drain_delay_ms, /readyz turns 503 at once (before the main thread
    // gets to the signal), so the balancer's next health check sees it.
    if (delay.count() > 0) server.announceDrain();
    Log::instance().write(LogLevel::Info, "", std::string("received ") + (sig == SIGINT ? "SIGINT" : sig == SIGQUIT ? "SIGQUIT" : "SIGTERM") +
                                                  (delay.count() > 0 ? ", /readyz reports 503 for " + std::to_string(delay.count()) +
                                                                           " ms (drain_delay_ms) before the listeners close, then"
                                                                     : std::string()) +
                                                  ", draining (up to " + std::to_string(drain.count()) + " ms)");
    deadline.emplace(delay + drain + kStopGrace, [&server] { return server.freezeStop(); }, exit_code::kSoftware);
  });
  for (;;) {
    const int sig = signals.next(std::chrono::seconds(1));  // also wakes up once a second to free retired listeners
    if (sig == 0) {
      server.collectRetired();
      continue;
    }
    if (sig == SIGHUP) {
      reload(server);
      drainMs = server.config().drainTimeoutMs;
      delayMs = server.config().drainDelayMs;
      continue;
    }
    if (sig == SIGUSR1) {
      reopenLog();
      continue;
    }
    break;  // a stop signal: the deadline is armed
  }
  // drain_delay_ms: the listeners keep accepting (and /readyz says 503) until
  // the delay, counted from the signal, has passed. A log reopen is still
  // served meanwhile; a reload is not (the host is stopping).
  const auto delayEnd = stopRequested + std::chrono::milliseconds(delayMs.load());
  for (auto now = Clock::now(); now < delayEnd; now = Clock::now()) {
    const int sig = signals.next(std::chrono::duration_cast<std::chrono::milliseconds>(delayEnd - now) + std::chrono::milliseconds(1));
    if (sig == SIGUSR1) reopenLog();
    else if (sig == SIGHUP) Log::instance().write(LogLevel::Info, "", "SIGHUP ignored: the host is stopping");
  }
  // The drain ends drainMs after the delay, also when the main thread got to the signal late.
  const auto drainLeft = std::chrono::duration_cast<std::chrono::milliseconds>(
      delayEnd + std::chrono::milliseconds(drainMs.load()) - Clock::now());
  server.stop(std::max(drainLeft, std::chrono::milliseconds(0)));
  deadline.reset();
  Log::instance().write(LogLevel::Info, "", "stopped");
  return exit_code::kOk;
}

}  // namespace protohost::host
