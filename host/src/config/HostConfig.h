#pragma once
// The host's typed configuration, read from the INI file and validated before
// anything is loaded or bound. Plugin-specific keys stay in each listener's
// ConfigView; the plugin's Factory::configure validates those.

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "net/Endpoint.h"
#include "net/ListenerLimits.h"
#include "ops/Privileges.h"
#include "protohost/ConfigView.h"
#include "protohost/Logger.h"

namespace protohost::host {

struct ListenerSpec {
  std::string name;     // "echo" for [listener.echo]
  int line = 0;         // line of the section header
  std::string plugin;   // plugin file stem
  int pluginLine = 0;
  std::string factory;  // exported factory name (default: plugin)
  int factoryLine = 0;
  Endpoint endpoint;
  int listenLine = 0;
  ListenerLimits limits;
  ConfigView pluginConfig;  // the whole section; host keys are marked read
};

struct HostConfig {
  std::string path;      // as given
  std::string baseDir;   // absolute directory of the file
  std::string pluginsDir;  // absolute
  int pluginsDirLine = 0;
  unsigned threads = 1;  // resolved: 0 in the file = one per core
  LogLevel logLevel = LogLevel::Info;
  std::string logFile;            // absolute; empty = stderr
  std::size_t maxConnections = 0;  // host-wide; 0 = unlimited
  int drainTimeoutMs = 5000;       // on TERM: how long connections may finish
  int drainDelayMs = 0;            // on TERM: /readyz says 503 this long before the listeners close
  int watchdogMs = 5000;           // report a reactor blocked this long; 0 = off
  bool watchdogAbort = false;      // abort() on a miss, for a supervisor to restart
  int bindRetries = 5;             // at start, retries of a bind that fails with EADDRINUSE (500 ms apart)
  unsigned workerThreads = 2;      // Reactor::deferToThread's pool; 0 = no pool (refused: ShuttingDown)
  std::size_t workerQueue = 1024;  // work waiting for a worker; more is refused (QueueFull)
  ServiceIdentity identity;        // [host] user/group: switch to it after binding
  std::optional<Endpoint> admin;   // [admin] listen: /metrics, /healthz, /readyz
  int adminLine = 0;
  std::vector<ListenerSpec> listeners;

  /// "FILE:LINE: KEY: " prefix for messages about this file.
  std::string where(int line, const std::string& key) const {
    return path + ":" + std::to_string(line) + ": " + key + ": ";
  }
};

/// All problems found in a config file, one message per line.
class ConfigInvalid : public std::runtime_error {
 public:
  explicit ConfigInvalid(std::vector<std::string> errors);
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::vector<std::string> errors_;
};

/// The config file does not exist or cannot be read (exit 66).
class ConfigUnreadable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Parses and validates @p text as the contents of @p path. @p baseDir is the
/// directory relative paths resolve against. Throws ConfigInvalid.
HostConfig parseHostConfig(const std::string& path, const std::string& baseDir, const std::string& text);

/// Reads @p path from disk and parses it; messages name the file as @p displayPath
/// (default: @p path). Throws ConfigUnreadable or ConfigInvalid.
HostConfig loadHostConfig(const std::string& path, const std::string& displayPath = {});

}  // namespace protohost::host
