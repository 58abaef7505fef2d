#pragma once
/// @file OperationsSupport.h
/// Helpers for the operations tests (tests/operations): reload, privileges,
/// plugin files, log reopen, socket activation. Builds on the e2e harness
/// (HostProcess.h, TestClient.h), which it does not change.
///
///  - ChildProcess: any command (setpriv, systemd-socket-activate, or the host
///    with LISTEN_* variables and inherited fds), stdout/stderr captured.
///  - TempDir: a temporary directory with a chosen mode (plugins dirs, config
///    dirs readable by an unprivileged user).
///  - Ports: freeLoopbackPort, freePrivilegedPort.
///  - HTTP: httpGet for the [admin] endpoint, metricValue for /metrics.
///  - waitUntil, readText, procStatusField, runShell, describe.

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <mutex>
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

#include "HostProcess.h"
#include "TestClient.h"

namespace protohost::ops {

using e2e::HostIni;
using e2e::HostProcess;
using e2e::IoError;
using e2e::LocalListener;
using e2e::TestClient;
using e2e::kHostBinary;
using e2e::kPluginDir;
using e2e::kTestPluginDir;

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

/// "tcp:PORT:interface=127.0.0.1"
inline std::string loopbackEndpoint(std::uint16_t port) { return "tcp:" + std::to_string(port) + ":interface=127.0.0.1"; }

/// Status and output of a finished host run, for assertion messages.
inline std::string describe(const HostProcess::Result& r) {
  return "status " + (r.status ? std::to_string(*r.status) : std::string("(still running: killed)")) +
         "\n--- stdout ---\n" + r.out + "--- stderr ---\n" + r.err;
}

/// Polls @p pred every @p step until it holds or @p timeout passes.
inline bool waitUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                      std::chrono::milliseconds step = std::chrono::milliseconds(20)) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

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

/// A child process of any binary, with stdout and stderr captured (stderr as
/// lines), extra environment variables and inherited descriptors. Same
/// waiting model as HostProcess: one reader thread, which reaps the child
/// once both pipes reach EOF; the destructor SIGKILLs a child still running.
class ChildProcess {
 public:
  struct Spec {
    std::vector<std::string> argv;                    ///< argv[0] is the program (absolute path)
    std::vector<std::string> env;                     ///< "NAME=VALUE" added to the test's environment
    std::vector<std::pair<int, int>> inheritFds;      ///< {fd in the test, fd number in the child}
  };

  explicit ChildProcess(Spec spec) {
    int outPipe[2], errPipe[2];
    if (::pipe2(outPipe, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
    if (::pipe2(errPipe, O_CLOEXEC) != 0) {
      int e = errno;
      ::close(outPipe[0]);
      ::close(outPipe[1]);
      throw std::system_error(e, std::generic_category(), "pipe2");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1);
    posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2);
    for (auto [from, to] : spec.inheritFds) posix_spawn_file_actions_adddup2(&actions, from, to);  // clears CLOEXEC

    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    std::vector<char*> argv;
    for (auto& s : spec.argv) argv.push_back(s.data());
    argv.push_back(nullptr);
    std::vector<std::string> envStrings;
    for (char** e = environ; e && *e; ++e) {
      std::string_view v(*e);
      if (v.rfind("LISTEN_FDS=", 0) == 0 || v.rfind("LISTEN_PID=", 0) == 0 || v.rfind("LISTEN_FDNAMES=", 0) == 0)
        continue;
      envStrings.emplace_back(v);
    }
    for (auto& e : spec.env) envStrings.push_back(e);
    std::vector<char*> envp;
    for (auto& s : envStrings) envp.push_back(s.data());
    envp.push_back(nullptr);

    pid_t pid = 0;
    int rc = ::posix_spawn(&pid, spec.argv.at(0).c_str(), &actions, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(outPipe[1]);
    ::close(errPipe[1]);
    if (rc != 0) {
      ::close(outPipe[0]);
      ::close(errPipe[0]);
      throw std::system_error(rc, std::generic_category(), "posix_spawn " + spec.argv.at(0));
    }
    pid_ = pid;
    reader_ = std::thread([this, out = outPipe[0], err = errPipe[0]] { readLoop(out, err); });
  }

  ~ChildProcess() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!exited_) ::kill(pid_, SIGKILL);
    }
    if (reader_.joinable()) reader_.join();
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }

  bool running() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return !exited_;
  }

  bool signal(int sig) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (exited_) return false;
    return ::kill(pid_, sig) == 0;
  }

  /// Exit status (0-255), 128 + N when killed by signal N; nullopt on timeout.
  std::optional<int> waitExit(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!cv_.wait_for(lock, timeout, [this] { return exited_; })) return std::nullopt;
    return exitStatus_;
  }

  std::size_t logLineCount() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_.size();
  }

  /// First stderr line (index >= @p since) matching @p re; nullopt on timeout or exit.
  std::optional<std::string> waitForLog(const std::string& re, std::chrono::milliseconds timeout, std::size_t since = 0) {
    const std::regex rx(re);
    std::unique_lock<std::mutex> lock(mutex_);
    const auto deadline = Clock::now() + timeout;
    std::size_t next = since;
    for (;;) {
      for (; next < lines_.size(); ++next)
        if (std::regex_search(lines_[next], rx)) return lines_[next];
      if (exited_) return std::nullopt;
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && next == lines_.size()) return std::nullopt;
    }
  }

  std::string stderrText() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string all;
    for (const auto& l : lines_) all += l + "\n";
    return all + partial_;
  }
  std::string stdoutText() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return out_;
  }

 private:
  void readLoop(int outFd, int errFd) {
    pollfd fds[2] = {{outFd, POLLIN, 0}, {errFd, POLLIN, 0}};
    int open = 2;
    char buf[65536];
    while (open > 0) {
      int n = ::poll(fds, 2, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        break;
      }
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
          ::close(fds[i].fd);
          fds[i].fd = -1;
          --open;
          continue;
        }
        std::lock_guard<std::mutex> lock(mutex_);
        if (i == 0) {
          out_.append(buf, static_cast<std::size_t>(got));
        } else {
          partial_.append(buf, static_cast<std::size_t>(got));
          std::size_t start = 0, nl;
          while ((nl = partial_.find('\n', start)) != std::string::npos) {
            lines_.push_back(partial_.substr(start, nl - start));
            start = nl + 1;
          }
          partial_.erase(0, start);
        }
        cv_.notify_all();
      }
    }
    for (auto& f : fds)
      if (f.fd >= 0) ::close(f.fd);
    siginfo_t info{};
    while (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
    }
    std::lock_guard<std::mutex> lock(mutex_);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    if (!partial_.empty()) lines_.push_back(std::exchange(partial_, {}));
    exitStatus_ = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
    exited_ = true;
    cv_.notify_all();
  }

  pid_t pid_ = -1;
  std::thread reader_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  std::string partial_;
  std::string out_;
  bool exited_ = false;
  int exitStatus_ = -1;
};

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
