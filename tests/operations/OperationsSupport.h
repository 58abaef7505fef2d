#pragma once
/// @file OperationsSupport.h
/// Helpers for the operations tests (tests/operations): reload, privileges,
/// plugin files, log reopen, socket activation. Builds on the e2e harness
/// (HostProcess.h, ChildProcess.h, TestClient.h).
///
///  - ChildProcess (tests/support/ChildProcess.h): any command (setpriv,
///    systemd-socket-activate, or the host with LISTEN_* variables and
///    inherited fds), stdout/stderr captured.
///  - TempDir: a temporary directory with a chosen mode (plugins dirs, config
///    dirs readable by an unprivileged user).
///  - Ports: freeLoopbackPort, freePrivilegedPort.
///  - HTTP: httpGet for the [admin] endpoint, metricValue for /metrics.
///  - waitUntil, readText, procStatusField, runShell, describe.

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "ChildProcess.h"
#include "HostProcess.h"
#include "TestClient.h"
#include "WaitUntil.h"

namespace protohost::ops {

using e2e::HostIni;
using e2e::HostProcess;
using e2e::IoError;
using e2e::LocalListener;
using e2e::TestClient;
using e2e::kHostBinary;
using e2e::kPluginDir;
using e2e::kTestPluginDir;
using testsupport::ChildProcess;

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

/// "tcp:PORT:interface=127.0.0.1"
inline std::string loopbackEndpoint(std::uint16_t port) { return "tcp:" + std::to_string(port) + ":interface=127.0.0.1"; }

/// Status and output of a finished host run, for assertion messages.
inline std::string describe(const HostProcess::Result& r) {
  return "status " + (r.status ? std::to_string(*r.status) : std::string("(still running: killed)")) +
         "\n--- stdout ---\n" + r.out + "--- stderr ---\n" + r.err;
}

using testsupport::waitUntil;

/// Whole content of a file ("" when unreadable).
inline std::string readText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void writeText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

/// 1-based number of the first line of @p text that starts with @p prefix, or 0.
inline int lineOf(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n)
    if (line.rfind(prefix, 0) == 0) return n;
  return 0;
}

/// Runs @p command with /bin/sh -c; returns its exit status (-1 if it did not exit).
inline int runShell(const std::string& command) {
  int rc = std::system(command.c_str());
  return rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/// A port on 127.0.0.1 that was free a moment ago (bound by the kernel's choice, then released).
inline std::uint16_t freeLoopbackPort() {
  LocalListener probe;
  return probe.port();
}

/// A free port below 1024 on 127.0.0.1, searching down from @p from, skipping @p exclude; 0 if none.
inline std::uint16_t freePrivilegedPort(std::uint16_t from = 1023, const std::set<std::uint16_t>& exclude = {}) {
  for (std::uint16_t p = from; p >= 900; --p)
    if (!exclude.count(p) && LocalListener::canListenOn(p)) return p;
  return 0;
}

/// True when a TCP connect to 127.0.0.1:@p port is refused right now.
inline bool connectRefused(std::uint16_t port) {
  try {
    TestClient c = TestClient::connect(port, TestClient::Options{std::chrono::milliseconds(2000), 0, 0});
    return false;
  } catch (const IoError& e) {
    return e.error() == ECONNREFUSED;
  }
}

/// A value of /proc/PID/status (e.g. "Uid"), without the "Name:" and surrounding blanks.
inline std::string procStatusField(const std::string& statusPath, const std::string& field) {
  std::ifstream in(statusPath);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) {
      std::string v = line.substr(field.size() + 1);
      auto b = v.find_first_not_of(" \t");
      auto e = v.find_last_not_of(" \t");
      return b == std::string::npos ? std::string() : v.substr(b, e - b + 1);
    }
  return "<no " + field + ">";
}

/// The unprivileged identity the privilege tests expect: nobody's uid and primary gid.
struct NobodyIds {
  uid_t uid = 65534;
  gid_t gid = 65534;
  bool found = false;
};
inline NobodyIds nobodyIds() {
  NobodyIds ids;
  if (const passwd* pw = ::getpwnam("nobody")) {
    ids.uid = pw->pw_uid;
    ids.gid = pw->pw_gid;
    ids.found = true;
  }
  return ids;
}

/// A temporary directory removed (recursively) by the destructor.
class TempDir {
 public:
  explicit TempDir(fs::perms mode = fs::perms::owner_all) {
    std::string tmpl = (fs::temp_directory_path() / "protohost-ops-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::system_error(errno, std::generic_category(), "mkdtemp");
    path_ = tmpl;
    fs::permissions(path_, mode);
  }
  ~TempDir() {
    std::error_code ec;
    // Undo anything a test made unremovable (chattr is not used; modes are enough).
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

  /// Creates (or re-modes) subdirectory @p name with @p mode; returns its path.
  std::string subdir(const std::string& name, fs::perms mode) const {
    std::string p = path_ + "/" + name;
    fs::create_directories(p);
    fs::permissions(p, mode);
    return p;
  }

  /// Copies @p source to @p dest (a path) with @p mode; returns dest.
  static std::string copy(const std::string& source, const std::string& dest, fs::perms mode) {
    fs::copy_file(source, dest, fs::copy_options::overwrite_existing);
    fs::permissions(dest, mode);
    return dest;
  }

 private:
  std::string path_;
};

inline constexpr fs::perms kMode0755 = fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                       fs::perms::others_read | fs::perms::others_exec;
inline constexpr fs::perms kMode0644 =
    fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read;

/// Path of a built test-only plugin (build/test-plugins/NAME.so) or real plugin.
inline std::string testPlugin(const std::string& name) { return std::string(kTestPluginDir) + "/" + name + ".so"; }
inline std::string realPlugin(const std::string& name) { return std::string(kPluginDir) + "/" + name + ".so"; }

/// A plugins directory @p dir/plugins (0755) holding copies (0644) of the real
/// plugins @p names, for a host that runs as another user (user = nobody,
/// setpriv): build/plugins is not readable by that user when the checkout lives
/// in a private directory such as /root (0700), and a test must not depend on
/// where the checkout lives. Returns the directory, for HostIni(dir).
inline std::string readablePluginsDir(const TempDir& dir, const std::vector<std::string>& names) {
  const std::string plugins = dir.subdir("plugins", kMode0755);
  for (const auto& name : names) TempDir::copy(realPlugin(name), plugins + "/" + name + ".so", kMode0644);
  return plugins;
}

/// A copy (0755) of the host binary in @p dir, for running it as another user
/// directly (setpriv): the build tree may not be searchable by that user.
inline std::string readableHostBinary(const TempDir& dir) { return TempDir::copy(kHostBinary, dir / "host", kMode0755); }

/// An HTTP response from the [admin] endpoint.
struct HttpResponse {
  int status = 0;
  std::string head;
  std::string body;
};

/// GET @p path from 127.0.0.1:@p port (HTTP/1.0, read until the server closes).
inline HttpResponse httpGet(std::uint16_t port, const std::string& path) {
  TestClient c = TestClient::connect(port, TestClient::Options{std::chrono::milliseconds(10000), 0, 0});
  c.sendAll("GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  std::string all = c.readUntilEof();
  HttpResponse r;
  auto end = all.find("\r\n\r\n");
  r.head = all.substr(0, end);
  r.body = end == std::string::npos ? std::string() : all.substr(end + 4);
  std::smatch m;
  if (std::regex_search(r.head, m, std::regex("^HTTP/1\\.[01] ([0-9]{3})"))) r.status = std::stoi(m[1].str());
  return r;
}

/// The value of sample @p sample (a metric name, optionally with its {labels}
/// exactly as printed) in a Prometheus text page; nullopt when absent.
inline std::optional<double> metricValue(const std::string& page, const std::string& sample) {
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind(sample, 0) != 0) continue;
    std::string rest = line.substr(sample.size());
    if (rest.empty() || rest[0] != ' ') continue;  // a longer name, or labels we did not ask for
    try {
      return std::stod(rest.substr(1));
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

/// The admin endpoint's /metrics page, or the error that prevented reading it.
inline std::string scrapeMetrics(std::uint16_t adminPort) {
  try {
    HttpResponse r = httpGet(adminPort, "/metrics");
    if (r.status != 200) return "# HTTP status " + std::to_string(r.status) + "\n" + r.head;
    return r.body;
  } catch (const std::exception& e) {
    return std::string("# scrape failed: ") + e.what();
  }
}

/// True when the tests run as root (rows that need root GTEST_SKIP otherwise).
inline bool runningAsRoot() { return ::geteuid() == 0; }

}  // namespace protohost::ops
