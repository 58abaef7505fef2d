#pragma once
/// @file ConfigView.h
/// A read-only view of one listener section of the host's INI file. Every
/// error it reports names the file, the line and the key, as the host does.

#include <charconv>
#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace protohost {

/// A configuration error; what() reads "FILE:LINE: KEY: problem".
/// Throw it (or call ConfigView::fail) from Factory::configure.
class __attribute__((visibility("default"))) ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Values of one INI section. Built by the host; passed to Factory::configure
/// on the main thread. The host reports every key the plugin never read as
/// "unknown key", so read each key you accept even when its default is fine.
class ConfigView {
 public:
  struct Entry {
    std::string value;
    int line = 0;
  };

  ConfigView() = default;
  /// @param file  path shown in messages; @param baseDir directory that relative
  /// paths resolve against (the config file's directory);
  /// @param sectionLine line of the "[section]" header, used for missing keys.
  ConfigView(std::string file, std::string section, int sectionLine, std::string baseDir,
             std::map<std::string, Entry> entries)
      : file_(std::move(file)),
        section_(std::move(section)),
        sectionLine_(sectionLine),
        baseDir_(std::move(baseDir)),
        entries_(std::move(entries)) {}

  const std::string& section() const { return section_; }
  bool has(const std::string& key) const {
    used_.insert(key);
    return entries_.count(key) != 0;
  }

  /// The value of @p key, or @p fallback when absent.
  std::string getString(const std::string& key, const std::string& fallback = {}) const {
    const Entry* e = find(key);
    return e ? e->value : fallback;
  }

  /// The value of @p key; a ConfigError when absent.
  std::string requireString(const std::string& key) const {
    const Entry* e = find(key);
    if (!e) fail(key, "missing required key");
    return e->value;
  }

  /// An integer in [min, max]; a ConfigError for anything else.
  std::int64_t getInt(const std::string& key, std::int64_t fallback, std::int64_t min = INT64_MIN,
                      std::int64_t max = INT64_MAX) const {
    const Entry* e = find(key);
    if (!e) return fallback;
    std::int64_t v = 0;
    const char* first = e->value.data();
    const char* last = first + e->value.size();
    auto [ptr, ec] = std::from_chars(first, last, v);
    if (ec != std::errc() || ptr != last || e->value.empty())
      fail(key, "expected an integer, got \"" + e->value + "\"");
    if (v < min || v > max)
      fail(key, "value " + e->value + " out of range [" + std::to_string(min) + ", " +
                    std::to_string(max) + "]");
    return v;
  }

  /// true/false, yes/no, on/off, 1/0.
  bool getBool(const std::string& key, bool fallback) const {
    const Entry* e = find(key);
    if (!e) return fallback;
    const std::string& v = e->value;
    if (v == "true" || v == "yes" || v == "on" || v == "1") return true;
    if (v == "false" || v == "no" || v == "off" || v == "0") return false;
    fail(key, "expected true or false, got \"" + v + "\"");
  }

  /// One of @p allowed.
  std::string getChoice(const std::string& key, const std::string& fallback,
                        const std::vector<std::string>& allowed) const {
    std::string v = getString(key, fallback);
    for (const auto& a : allowed)
      if (a == v) return v;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    fail(key, "expected one of " + list + ", got \"" + v + "\"");
  }

  /// A filesystem path; a relative one is resolved against the config file's directory.
  std::string getPath(const std::string& key, const std::string& fallback = {}) const {
    std::string v = getString(key, fallback);
    if (v.empty() || v.front() == '/' || baseDir_.empty()) return v;
    return baseDir_ + "/" + v;
  }

  /// Throws ConfigError("FILE:LINE: KEY: message"), using the key's line, or the
  /// section's line when the key is absent.
  [[noreturn]] void fail(const std::string& key, const std::string& message) const {
    auto it = entries_.find(key);
    int line = it != entries_.end() ? it->second.line : sectionLine_;
    throw ConfigError(file_ + ":" + std::to_string(line) + ": " + key + ": " + message);
  }

  /// Host only: keys present in the section that nobody read.
  std::vector<std::string> unreadKeys() const {
    std::vector<std::string> out;
    for (const auto& [k, e] : entries_)
      if (!used_.count(k)) out.push_back(k);
    return out;
  }
  /// Host only: every key of the section with its value and line.
  const std::map<std::string, Entry>& entries() const { return entries_; }
  /// Host only: marks @p key as read (keys the host itself consumes).
  void markRead(const std::string& key) const { used_.insert(key); }

 private:
  const Entry* find(const std::string& key) const {
    used_.insert(key);
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : &it->second;
  }

  std::string file_;
  std::string section_;
  int sectionLine_ = 0;
  std::string baseDir_;
  std::map<std::string, Entry> entries_;
  mutable std::set<std::string> used_;
};

}  // namespace protohost
