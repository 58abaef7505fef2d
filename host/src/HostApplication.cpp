#include "HostApplication.h"

#include <Poco/Util/HelpFormatter.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionException.h>
#include <Poco/Util/OptionProcessor.h>
#include <Poco/Util/OptionSet.h>
#include <signal.h>

#include <filesystem>
#include <iostream>

#include "ExitCodes.h"
#include "HostConfig.h"
#include "Log.h"
#include "PluginLibrary.h"
#include "Server.h"
#include "protohost/Version.h"

#ifndef PROTOHOST_VERSION
#define PROTOHOST_VERSION "0.0.0"
#endif

namespace protohost::host {
namespace fs = std::filesystem;
using Poco::Util::Option;

HostApplication::HostApplication(std::string startDir) : startDir_(std::move(startDir)) {
  setUnixOptions(true);
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
  if (help_) {
    Poco::Util::HelpFormatter help(options());
    help.setCommand("host");
    help.setUsage("--config FILE [--check-config | --list-plugins | --daemon --pidfile FILE]");
    help.setHeader("protohost: a protocol host that serves plugins (shared libraries) on the ports its config names.");
    help.setFooter("Signals: TERM/INT stop; HUP is logged (reload comes later). Exit codes: 0 ok, 64 usage, "
                   "65 corrupt plugin state, 66 config missing, 78 bad config/plugin/port.");
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
  Server server(config);
  try {
    server.load();
    if (checkConfig_) {
      std::cout << config.path << ": configuration ok (" << config.listeners.size() << " listeners)\n";
      return exit_code::kOk;
    }
    server.start();
  } catch (const StartupError& e) {
    std::cerr << e.what() << "\n";
    server.stop();
    return e.exitCode();
  }
  Log::instance().write(LogLevel::Info, "", "protohost " PROTOHOST_VERSION " started, pid " + std::to_string(::getpid()) +
                                                ", " + std::to_string(config.threads) + " reactor thread(s)");

  // One sigwait loop; the signals were blocked in main() before any thread started,
  // so every thread inherits the mask and only this loop receives them.
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGHUP, SIGUSR1, SIGTERM, SIGINT, SIGQUIT}) sigaddset(&set, s);
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      Log::instance().write(LogLevel::Warning, "", "SIGHUP received: configuration reload is not implemented yet; still serving");
      continue;
    }
    if (sig == SIGUSR1) {
      Log::instance().write(LogLevel::Info, "", "SIGUSR1 received: logging to stderr, nothing to reopen");
      continue;
    }
    Log::instance().write(LogLevel::Info, "", std::string("received ") + (sig == SIGINT ? "SIGINT" : sig == SIGQUIT ? "SIGQUIT" : "SIGTERM") + ", shutting down");
    break;
  }
  server.stop(std::chrono::milliseconds(config.drainTimeoutMs));
  Log::instance().write(LogLevel::Info, "", "stopped");
  return exit_code::kOk;
}

}  // namespace protohost::host
