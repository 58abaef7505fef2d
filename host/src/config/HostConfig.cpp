#include "config/HostConfig.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "config/IniFile.h"
#include "base/Log.h"
#include "ops/Privileges.h"

namespace protohost::host {
namespace fs = std::filesystem;

namespace {
const char* const kListenerPrefix = "listener.";

std::string joinLines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += (out.empty() ? "" : "\n") + l;
  return out;
}
}  // namespace

ConfigInvalid::ConfigInvalid(std::vector<std::string> errors)
    : std::runtime_error(joinLines(errors)), errors_(std::move(errors)) {}

namespace {

// The TLS files of an ssl: endpoint, relative to the config file's directory.
void resolveTlsPaths(TlsOptions& tls, const std::string& baseDir) {
  auto resolve = [&](std::string& p) {
    if (!p.empty() && p.front() != '/') p = (std::filesystem::path(baseDir) / p).lexically_normal().string();
  };
  for (auto& c : tls.certificates) {
    resolve(c.cert);
    resolve(c.key);
  }
  resolve(tls.extraCertChain);
  resolve(tls.caCerts);
}

}  // namespace

HostConfig parseHostConfig(const std::string& path, const std::string& baseDir, const std::string& text) {
  std::vector<std::string> errors;
  IniFile ini = parseIni(path, text, errors);
  HostConfig cfg;
  cfg.path = path;
  cfg.baseDir = baseDir;
  auto error = [&](int line, const std::string& key, const std::string& what) {
    errors.push_back(cfg.where(line, key) + what);
  };

  // Runs one read of a ConfigView, turning its ConfigError into a collected message.
  auto collect = [&](auto&& read) {
    try {
      read();
    } catch (const ConfigError& e) {
      errors.push_back(e.what());
    }
  };

  const IniSection* host = ini.find("host");
  if (!host) {
    error(1, "[host]", "missing section [host] (it needs at least plugins_dir)");
  } else {
    ConfigView v(path, "host", host->line, baseDir, host->entries);
    collect([&] {
      cfg.pluginsDir = fs::path(v.getPath("plugins_dir")).lexically_normal().string();
      if (cfg.pluginsDir.empty()) v.fail("plugins_dir", "missing required key in [host]");
      if (cfg.pluginsDir.size() > 1 && cfg.pluginsDir.back() == '/') cfg.pluginsDir.pop_back();
    });
    collect([&] {
      auto n = v.getInt("threads", 1, 0, 64);
      cfg.threads = n == 0 ? std::max(1u, std::thread::hardware_concurrency()) : static_cast<unsigned>(n);
    });
    collect([&] {
      std::string level = v.getString("log_level", "info");
      if (!parseLogLevel(level, cfg.logLevel))
        v.fail("log_level", "expected debug, info, warning or error, got \"" + level + "\"");
    });
    collect([&] { cfg.logFile = v.getPath("log_file"); });
    collect([&] { cfg.maxConnections = static_cast<std::size_t>(v.getInt("max_connections", 0, 0, 10'000'000)); });
    collect([&] { cfg.drainTimeoutMs = static_cast<int>(v.getInt("drain_timeout_ms", 5000, 0, 3'600'000)); });
    collect([&] { cfg.drainDelayMs = static_cast<int>(v.getInt("drain_delay_ms", 0, 0, 3'600'000)); });
    collect([&] { cfg.watchdogMs = static_cast<int>(v.getInt("watchdog_ms", 5000, 0, 3'600'000)); });
    collect([&] { cfg.watchdogAbort = v.getBool("watchdog_abort", false); });
    collect([&] { cfg.bindRetries = static_cast<int>(v.getInt("bind_retries", 5, 0, 100)); });
    collect([&] { cfg.workerThreads = static_cast<unsigned>(v.getInt("worker_threads", 2, 0, 256)); });
    collect([&] { cfg.workerQueue = static_cast<std::size_t>(v.getInt("worker_queue", 1024, 1, 1'000'000)); });
    collect([&] {
      std::string why;
      if (!resolveIdentity(v.getString("user"), v.getString("group"), cfg.identity, why))
        v.fail(v.has("group") && why.find("group") != std::string::npos ? "group" : "user", why);
      if (v.has("group") && !v.has("user")) v.fail("group", "group needs user");
    });
    for (const auto& key : v.unreadKeys())
      error(host->entries.at(key).line, key,
            "unknown key in [host] (plugins_dir, threads, log_level, log_file, max_connections, drain_timeout_ms, "
            "drain_delay_ms, "
            "watchdog_ms, watchdog_abort, bind_retries, worker_threads, worker_queue, user, group)");
  }

  if (const IniSection* admin = ini.find("admin")) {
    ConfigView v(path, "admin", admin->line, baseDir, admin->entries);
    collect([&] {
      std::string endpointText = v.requireString("listen");
      std::string why;
      if (!parseEndpoint(endpointText, cfg.admin.emplace(), why)) v.fail("listen", why);
      if (cfg.admin->isDatagram() || cfg.admin->isTls())
        v.fail("listen", "the admin endpoint serves plain HTTP: a tcp: endpoint, not " + cfg.admin->scheme + ":");
      cfg.adminLine = admin->entries.at("listen").line;
    });
    for (const auto& key : v.unreadKeys())
      error(admin->entries.at(key).line, key, "unknown key in [admin] (listen)");
  }

  for (const auto& section : ini.sections) {
    if (section.name == "host" || section.name == "admin") continue;
    if (section.name.rfind(kListenerPrefix, 0) != 0) {
      error(section.line, "[" + section.name + "]", "unknown section (expected [host], [admin] or [listener.NAME])");
      continue;
    }
    ListenerSpec spec;
    spec.name = section.name.substr(std::string(kListenerPrefix).size());
    spec.line = section.line;
    if (spec.name.empty() || spec.name.find('.') != std::string::npos) {
      error(section.line, "[" + section.name + "]", "listener name must be one word, as in [listener.echo]");
      continue;
    }
    spec.pluginConfig = ConfigView(path, section.name, section.line, baseDir, section.entries);
    const ConfigView& view = spec.pluginConfig;
    auto entry = [&](const char* key) -> const ConfigView::Entry* {
      view.markRead(key);
      auto it = section.entries.find(key);
      return it == section.entries.end() ? nullptr : &it->second;
    };
    bool ok = true;
    if (auto* e = entry("plugin")) {
      spec.plugin = e->value;
      spec.pluginLine = e->line;
      if (spec.plugin.empty() || spec.plugin.find('/') != std::string::npos || spec.plugin[0] == '.') {
        error(e->line, "plugin", "expected a plugin name (the file stem in plugins_dir), got \"" + e->value + "\"");
        ok = false;
      }
    } else {
      error(section.line, "plugin", "missing required key in [" + section.name + "]");
      ok = false;
    }
    if (auto* e = entry("factory")) {
      spec.factory = e->value;
      spec.factoryLine = e->line;
      if (spec.factory.empty()) {
        error(e->line, "factory", "must not be empty");
        ok = false;
      }
    } else {
      spec.factory = spec.plugin;
      spec.factoryLine = spec.pluginLine;
    }
    if (auto* e = entry("listen")) {
      std::string why;
      spec.listenLine = e->line;
      if (!parseEndpoint(e->value, spec.endpoint, why)) {
        error(e->line, "listen", why);
        ok = false;
      } else if (spec.endpoint.isTls()) {
        resolveTlsPaths(spec.endpoint.tls, baseDir);
      }
    } else {
      error(section.line, "listen", "missing required key in [" + section.name + "]");
      ok = false;
    }
    // Host-owned limits of this listener; the rest of the section is the plugin's.
    collect([&] { spec.limits.maxConnections = static_cast<std::size_t>(view.getInt("max_connections", 0, 0, 10'000'000)); });
    collect([&] { spec.limits.maxConnectionsPerIp = static_cast<std::size_t>(view.getInt("max_connections_per_ip", 0, 0, 10'000'000)); });
    collect([&] { spec.limits.idleTimeoutMs = static_cast<int>(view.getInt("idle_timeout_ms", 0, 0, 86'400'000)); });
    collect([&] {
      spec.limits.maxOutputBytes = static_cast<std::size_t>(view.getInt("max_output_bytes", 64 << 20, 4096, std::int64_t{1} << 40));
      spec.limits.pauseReadingAbove = std::min<std::size_t>(spec.limits.pauseReadingAbove, spec.limits.maxOutputBytes / 2);
    });
    collect([&] { spec.limits.proxyProtocol = view.getChoice("proxy_protocol", "off", {"off", "required"}) == "required"; });
    collect([&] {
      spec.limits.proxyProtocolTimeoutMs = static_cast<int>(view.getInt("proxy_protocol_timeout_ms", 3000, 1, 3'600'000));
    });
    if (ok && spec.endpoint.isTls()) {
      collect([&] {
        spec.limits.tlsHandshakeTimeoutMs = static_cast<int>(view.getInt("tls_handshake_timeout_ms", 10000, 1, 3'600'000));
      });
    } else if (auto it = section.entries.find("tls_handshake_timeout_ms"); ok && it != section.entries.end()) {
      view.markRead("tls_handshake_timeout_ms");
      error(it->second.line, "tls_handshake_timeout_ms", "applies to ssl: listeners only; this one listens on " +
                                                             spec.endpoint.scheme + ":");
    }
    if (ok && spec.endpoint.isDatagram()) {
      collect([&] {
        spec.limits.maxDatagramBytes = static_cast<std::size_t>(view.getInt("max_datagram_bytes", 65507, 1, 65535));
      });
      // Connection keys mean nothing to a datagram socket: say so rather than ignore them.
      for (const char* key : {"max_connections", "max_connections_per_ip", "idle_timeout_ms", "max_output_bytes",
                              "proxy_protocol", "proxy_protocol_timeout_ms"})
        if (auto it = section.entries.find(key); it != section.entries.end())
          error(it->second.line, key, "applies to tcp: listeners only; this one listens on udp:");
    } else if (auto it = section.entries.find("max_datagram_bytes"); ok && it != section.entries.end()) {
      view.markRead("max_datagram_bytes");
      error(it->second.line, "max_datagram_bytes", "applies to udp: listeners only; this one listens on tcp:");
    }
    if (!ok) continue;
    if (cfg.admin && cfg.admin->conflictsWith(spec.endpoint)) {
      error(spec.listenLine, "listen", "endpoint " + spec.endpoint.toString() + " is also the [admin] endpoint");
      continue;
    }
    for (const auto& other : cfg.listeners) {
      if (other.endpoint.conflictsWith(spec.endpoint)) {
        error(spec.listenLine, "listen",
              "duplicate endpoint " + spec.endpoint.toString() + " (also used by [listener." + other.name +
                  "] at line " + std::to_string(other.listenLine) + ")");
        ok = false;
        break;
      }
    }
    if (ok) cfg.listeners.push_back(std::move(spec));
  }
  if (errors.empty() && cfg.listeners.empty())
    error(1, "[listener.NAME]", "no listeners configured");
  if (!errors.empty()) throw ConfigInvalid(std::move(errors));
  return cfg;
}

HostConfig loadHostConfig(const std::string& path, const std::string& displayPath) {
  const std::string& shown = displayPath.empty() ? path : displayPath;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw ConfigUnreadable(shown + ": config file not found");
  if (fs::is_directory(path, ec)) throw ConfigUnreadable(shown + ": is a directory, not a config file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigUnreadable(shown + ": cannot read config file");
  std::ostringstream text;
  text << in.rdbuf();
  fs::path abs = fs::absolute(path, ec).lexically_normal();
  return parseHostConfig(shown, abs.parent_path().string(), text.str());
}

}  // namespace protohost::host
