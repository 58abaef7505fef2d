#include "HostConfig.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "IniFile.h"
#include "Log.h"

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

HostConfig parseHostConfig(const std::string& path, const std::string& baseDir, const std::string& text) {
  std::vector<std::string> errors;
  IniFile ini = parseIni(path, text, errors);
  HostConfig cfg;
  cfg.path = path;
  cfg.baseDir = baseDir;
  auto error = [&](int line, const std::string& key, const std::string& what) {
    errors.push_back(cfg.where(line, key) + what);
  };

  const IniSection* host = ini.find("host");
  if (!host) {
    error(1, "[host]", "missing section [host] (it needs at least plugins_dir)");
  } else {
    for (const auto& [key, entry] : host->entries) {
      if (key == "plugins_dir") {
        if (entry.value.empty()) {
          error(entry.line, key, "must not be empty");
          continue;
        }
        fs::path p(entry.value);
        if (p.is_relative()) p = fs::path(baseDir) / p;
        cfg.pluginsDir = p.lexically_normal().string();
        if (cfg.pluginsDir.size() > 1 && cfg.pluginsDir.back() == '/') cfg.pluginsDir.pop_back();
        cfg.pluginsDirLine = entry.line;
      } else if (key == "threads") {
        ConfigView v(path, "host", host->line, baseDir, {{key, entry}});
        try {
          auto n = v.getInt(key, 1, 0, 64);
          cfg.threads = n == 0 ? std::max(1u, std::thread::hardware_concurrency()) : static_cast<unsigned>(n);
        } catch (const ConfigError& e) {
          errors.push_back(e.what());
        }
      } else if (key == "log_level") {
        if (!parseLogLevel(entry.value, cfg.logLevel))
          error(entry.line, key, "expected debug, info, warning or error, got \"" + entry.value + "\"");
      } else {
        error(entry.line, key, "unknown key in [host] (plugins_dir, threads, log_level)");
      }
    }
    if (cfg.pluginsDir.empty() && cfg.pluginsDirLine == 0)
      error(host->line, "plugins_dir", "missing required key in [host]");
  }

  for (const auto& section : ini.sections) {
    if (section.name == "host") continue;
    if (section.name.rfind(kListenerPrefix, 0) != 0) {
      error(section.line, "[" + section.name + "]", "unknown section (expected [host] or [listener.NAME])");
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
      }
    } else {
      error(section.line, "listen", "missing required key in [" + section.name + "]");
      ok = false;
    }
    if (!ok) continue;
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
