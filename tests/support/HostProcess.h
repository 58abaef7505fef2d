#pragma once
/// @file HostProcess.h
/// End-to-end test harness: runs the real `host` binary as a child process.
///
/// Header-only, standard library + POSIX only (no GoogleTest), so any test
/// binary can use it. Typical use:
///
///     protohost::e2e::HostIni ini;                       // [host] plugins_dir = build/plugins
///     ini.listener("echo", "echo");                      // tcp:0:interface=127.0.0.1
///     protohost::e2e::HostProcess host;
///     host.startWithConfig(ini.text());
///     std::uint16_t port = host.port("echo");           // waits for "listening on"
///     ... talk to 127.0.0.1:port (see TestClient.h) ...
///     host.signal(SIGTERM);
///     EXPECT_EQ(host.waitExit(std::chrono::seconds(10)), 0);
///
/// Every wait is a condition wait with a timeout: the host's stdout and stderr
/// are read by one thread, which also reaps the child once both pipes hit EOF.
/// The destructor SIGKILLs a host that is still running and removes the
/// temporary directory (config, plugin links, anything written with writeFile).
///
/// Paths come from the compile definitions of the CMake target
/// protohost_test_support: PROTOHOST_HOST_BINARY, PROTOHOST_PLUGIN_DIR,
/// PROTOHOST_TEST_PLUGIN_DIR. Set PROTOHOST_E2E_ECHO_LOG=1 in the environment
/// to copy the host's stderr to the test's stderr as it arrives.

#include <fcntl.h>
#include <poll.h>
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
#include <iostream>
#include <iterator>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace protohost::e2e {

#ifdef PROTOHOST_HOST_BINARY
inline constexpr const char* kHostBinary = PROTOHOST_HOST_BINARY;
#else
inline constexpr const char* kHostBinary = "host";
#endif
#ifdef PROTOHOST_PLUGIN_DIR
inline constexpr const char* kPluginDir = PROTOHOST_PLUGIN_DIR;
#else
inline constexpr const char* kPluginDir = "plugins";
#endif
#ifdef PROTOHOST_TEST_PLUGIN_DIR
inline constexpr const char* kTestPluginDir = PROTOHOST_TEST_PLUGIN_DIR;
#else
inline constexpr const char* kTestPluginDir = "test-plugins";
#endif

/// Endpoint for a loopback listener on a port the kernel picks.
inline constexpr const char* kLoopbackAnyPort = "tcp:0:interface=127.0.0.1";

/// Builds the text of a host.ini. [host] gets plugins_dir (absolute),
/// threads = 1 and log_level = info unless overridden with set().
class HostIni {
 public:
  using Keys = std::vector<std::pair<std::string, std::string>>;

  explicit HostIni(std::string pluginsDir = kPluginDir) {
    host_ = {{"plugins_dir", std::move(pluginsDir)}, {"threads", "1"}, {"log_level", "info"}};
  }

  /// Sets (or replaces) a key of [host], e.g. set("threads", "2").
  HostIni& set(const std::string& key, std::string value) {
    for (auto& [k, v] : host_)
      if (k == key) {
        v = std::move(value);
        return *this;
      }
    host_.emplace_back(key, std::move(value));
    return *this;
  }

  /// Adds [listener.NAME] with plugin = PLUGIN, listen = LISTEN and @p keys
  /// (factory, limits, plugin-specific keys) in the given order.
  HostIni& listener(const std::string& name, const std::string& plugin, Keys keys = {},
                    std::string listen = kLoopbackAnyPort) {
    Keys all{{"plugin", plugin}, {"listen", std::move(listen)}};
    all.insert(all.end(), keys.begin(), keys.end());
    listeners_.emplace_back(name, std::move(all));
    return *this;
  }

  /// Appends raw text at the end (for deliberately broken configs).
  HostIni& raw(std::string text) {
    raw_ += std::move(text);
    return *this;
  }

  std::string text() const {
    std::string out = "; written by the protohost e2e harness\n[host]\n";
    for (const auto& [k, v] : host_) out += k + " = " + v + "\n";
    for (const auto& [name, keys] : listeners_) {
      out += "\n[listener." + name + "]\n";
      for (const auto& [k, v] : keys) out += k + " = " + v + "\n";
    }
    return out + raw_;
  }

  /// 1-based line of the first line of text() that starts with @p prefix
  /// (e.g. "colour ="), or 0; for expecting "host.ini:LINE: key:" messages.
  int lineOf(const std::string& prefix) const {
    std::istringstream in(text());
    std::string line;
    for (int n = 1; std::getline(in, line); ++n)
      if (line.rfind(prefix, 0) == 0) return n;
    return 0;
  }

 private:
  Keys host_;
  std::vector<std::pair<std::string, Keys>> listeners_;
  std::string raw_;
};

/// A `host` child process with its own temporary directory.
class HostProcess {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kDefaultTimeout{10000};

  HostProcess() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "protohost-e2e-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::system_error(errno, std::generic_category(), "mkdtemp");
    dir_ = tmpl;
    const char* echo = std::getenv("PROTOHOST_E2E_ECHO_LOG");
    echoLog_ = echo && *echo && std::string(echo) != "0";
  }

  ~HostProcess() {
    if (started_) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!exited_) ::kill(pid_, SIGKILL);  // not reaped yet: the pid is still ours
      }
      if (reader_.joinable()) reader_.join();
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  HostProcess(const HostProcess&) = delete;
  HostProcess& operator=(const HostProcess&) = delete;

  /// The temporary directory (removed by the destructor).
  const std::string& dir() const { return dir_; }

  /// Writes @p text to dir()/@p name and returns its absolute path.
  std::string writeFile(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path);
    return path;
  }

  /// Writes dir()/host.ini and returns its absolute path.
  std::string writeConfig(const std::string& text) { return writeFile("host.ini", text); }

  /// Makes dir()/plugins hold symlinks to @p files (absolute .so paths) and
  /// returns that directory: a plugins_dir with plugins from several build
  /// directories (e.g. echo.so from build/plugins and a test plugin).
  std::string linkPlugins(const std::vector<std::string>& files) {
    std::filesystem::path plugins = std::filesystem::path(dir_) / "plugins";
    std::filesystem::create_directories(plugins);
    for (const auto& f : files) {
      std::filesystem::path link = plugins / std::filesystem::path(f).filename();
      std::error_code ec;
      std::filesystem::remove(link, ec);
      std::filesystem::create_symlink(f, link);
    }
    return plugins.string();
  }

  /// Sets (or, with an empty optional, removes) an environment variable for the
  /// host; call before start(). The host otherwise inherits this process's
  /// environment minus systemd's LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES.
  void setEnv(const std::string& name, std::optional<std::string> value) {
    for (auto& [k, v] : envOverrides_)
      if (k == name) {
        v = std::move(value);
        return;
      }
    envOverrides_.emplace_back(name, std::move(value));
  }

  /// Starts `host ARGS...` (argv[0] is the binary). stdin is /dev/null;
  /// stdout and stderr are captured. Throws when the spawn fails.
  void start(const std::vector<std::string>& args) {
    if (started_) throw std::logic_error("HostProcess::start called twice");
    int outPipe[2], errPipe[2];
    if (::pipe2(outPipe, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
    if (::pipe2(errPipe, O_CLOEXEC) != 0) {
      int e = errno;
      closeBoth(outPipe);
      throw std::system_error(e, std::generic_category(), "pipe2");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1);  // dup2 clears O_CLOEXEC
    posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2);

    // Default signal dispositions and an empty mask in the child, whatever the
    // test process did (the host blocks what it handles itself).
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    std::vector<std::string> argvStrings;
    argvStrings.emplace_back(kHostBinary);
    argvStrings.insert(argvStrings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : argvStrings) argv.push_back(s.data());
    argv.push_back(nullptr);
    // The parent's environment minus systemd socket activation variables and
    // the overridden ones, plus the overrides.
    std::vector<std::string> envStrings;
    for (char** e = environ; e && *e; ++e) {
      std::string_view v(*e);
      std::string_view name = v.substr(0, v.find('='));
      bool drop = name == "LISTEN_FDS" || name == "LISTEN_PID" || name == "LISTEN_FDNAMES";
      for (const auto& [k, value] : envOverrides_) drop = drop || name == k;
      if (!drop) envStrings.emplace_back(v);
    }
    for (const auto& [k, value] : envOverrides_)
      if (value) envStrings.push_back(k + "=" + *value);
    std::vector<char*> envp;
    for (auto& e : envStrings) envp.push_back(e.data());
    envp.push_back(nullptr);

    pid_t pid = 0;
    int rc = ::posix_spawn(&pid, kHostBinary, &actions, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(outPipe[1]);
    ::close(errPipe[1]);
    if (rc != 0) {
      ::close(outPipe[0]);
      ::close(errPipe[0]);
      throw std::system_error(rc, std::generic_category(), std::string("posix_spawn ") + kHostBinary);
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      pid_ = pid;
      started_ = true;
    }
    reader_ = std::thread([this, out = outPipe[0], err = errPipe[0]] { readLoop(out, err); });
  }

  /// Writes @p iniText to dir()/host.ini and starts `host --config PATH EXTRA...`.
  void startWithConfig(const std::string& iniText, const std::vector<std::string>& extraArgs = {}) {
    std::vector<std::string> args{"--config", writeConfig(iniText)};
    args.insert(args.end(), extraArgs.begin(), extraArgs.end());
    start(args);
  }

  /// What a process that ran to completion printed, and how it ended.
  struct Result {
    std::optional<int> status;  ///< exit status as from waitExit; nullopt: timed out (killed)
    std::string out;            ///< stdout
    std::string err;            ///< stderr
  };

  /// Starts `host ARGS...`, waits for it to exit and returns its status and output.
  Result run(const std::vector<std::string>& args, std::chrono::milliseconds timeout = kDefaultTimeout) {
    start(args);
    Result r;
    r.status = waitExit(timeout);
    if (!r.status) {
      signal(SIGKILL);
      waitExit(timeout);
    }
    r.out = stdoutText();
    r.err = stderrText();
    return r;
  }

  pid_t pid() const { return pid_; }

  /// True while the process has not exited (been reaped).
  bool running() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return started_ && !exited_;
  }

  /// Sends @p sig; returns false when the process has already exited.
  bool signal(int sig) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!started_ || exited_) return false;
    return ::kill(pid_, sig) == 0;
  }

  /// Waits until the process exits. Returns its exit status (0-255), or
  /// 128 + N when signal N killed it (as a shell reports it); nullopt on timeout.
  std::optional<int> waitExit(std::chrono::milliseconds timeout = kDefaultTimeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!started_) return std::nullopt;
    if (!cv_.wait_for(lock, timeout, [this] { return exited_; })) return std::nullopt;
    return exitStatus_;
  }

  /// Number of complete stderr lines so far: pass it as @p since to wait only
  /// for lines logged after this point.
  std::size_t logLineCount() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_.size();
  }

  /// Waits until a stderr line (index >= @p since) matches @p re (std::regex_search)
  /// and returns that line; nullopt when the timeout passes or the process
  /// exits without printing one.
  std::optional<std::string> waitForLog(const std::regex& re, std::chrono::milliseconds timeout = kDefaultTimeout,
                                        std::size_t since = 0) {
    std::unique_lock<std::mutex> lock(mutex_);
    const auto deadline = Clock::now() + timeout;
    std::size_t next = since;
    for (;;) {
      for (; next < lines_.size(); ++next)
        if (std::regex_search(lines_[next], re)) return lines_[next];
      if (exited_ || !started_) return std::nullopt;  // no more lines will come
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && next == lines_.size()) return std::nullopt;
    }
  }
  std::optional<std::string> waitForLog(const std::string& re, std::chrono::milliseconds timeout = kDefaultTimeout,
                                        std::size_t since = 0) {
    return waitForLog(std::regex(re), timeout, since);
  }

  /// The port of [listener.NAME], from its "[listener=NAME] listening on ADDR:PORT"
  /// line (the first one: a reload that keeps the socket logs the same port).
  /// Throws std::runtime_error, with the log so far, when none appears in time.
  std::uint16_t port(const std::string& listenerName, std::chrono::milliseconds timeout = kDefaultTimeout) {
    std::regex re("\\[listener=" + escapeRegex(listenerName) + "\\] listening on \\S*:([0-9]+) ");
    auto line = waitForLog(re, timeout);
    if (!line)
      throw std::runtime_error("host did not report listener \"" + listenerName + "\" listening; stderr:\n" +
                               stderrText());
    std::smatch m;
    std::regex_search(*line, m, re);
    return static_cast<std::uint16_t>(std::stoul(m[1].str()));
  }

  /// Everything the process wrote to stderr / stdout so far.
  std::string stderrText() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string all;
    for (const auto& l : lines_) all += l + "\n";
    return all + partialErr_;
  }
  std::string stdoutText() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return out_;
  }

  /// Resident set size (VmRSS of /proc/PID/status) in KiB; -1 when unreadable.
  long rssKiB() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    return -1;
  }

  /// CPU time used so far (utime + stime of /proc/PID/stat), in clock ticks
  /// (see clockTicksPerSecond()); -1 when unreadable.
  long long cpuTicks() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto close = stat.rfind(')');  // comm may contain spaces and parentheses
    if (close == std::string::npos) return -1;
    std::istringstream fields(stat.substr(close + 1));
    std::string f;
    long long utime = -1, stime = -1;
    for (int i = 3; i <= 15 && (fields >> f); ++i) {  // field 3 is the state
      if (i == 14) utime = std::stoll(f);
      if (i == 15) stime = std::stoll(f);
    }
    return utime < 0 || stime < 0 ? -1 : utime + stime;
  }

  static long clockTicksPerSecond() { return ::sysconf(_SC_CLK_TCK); }

  /// Names (comm) of the process's threads, e.g. "host", "reactor-0".
  std::vector<std::string> threadNames() const {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/task", ec)) {
      std::ifstream in(task.path() / "comm");
      std::string name;
      if (std::getline(in, name)) names.push_back(name);
    }
    return names;
  }

  /// Escapes regex metacharacters in @p text.
  static std::string escapeRegex(const std::string& text) {
    static const std::string special = "\\^$.|?*+()[]{}";
    std::string out;
    for (char c : text) {
      if (special.find(c) != std::string::npos) out.push_back('\\');
      out.push_back(c);
    }
    return out;
  }

 private:
  static void closeBoth(int p[2]) {
    ::close(p[0]);
    ::close(p[1]);
  }

  // Reader thread: collects stdout and stderr until both reach EOF (the host
  // exited), then reaps it. Reaping happens under the mutex so that signal()
  // never targets a recycled pid.
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
        append(i == 1, std::string_view(buf, static_cast<std::size_t>(got)));
      }
    }
    for (auto& f : fds)
      if (f.fd >= 0) ::close(f.fd);
    // Wait without reaping, then reap under the lock.
    siginfo_t info{};
    while (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
    }
    std::lock_guard<std::mutex> lock(mutex_);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    if (!partialErr_.empty()) lines_.push_back(std::exchange(partialErr_, {}));
    exitStatus_ = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
    exited_ = true;
    cv_.notify_all();
  }

  void append(bool isErr, std::string_view data) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!isErr) {
      out_.append(data);
    } else {
      partialErr_.append(data);
      std::size_t start = 0, nl;
      while ((nl = partialErr_.find('\n', start)) != std::string::npos) {
        lines_.push_back(partialErr_.substr(start, nl - start));
        if (echoLog_) std::cerr << "[host " << pid_ << "] " << lines_.back() << "\n";
        start = nl + 1;
      }
      partialErr_.erase(0, start);
    }
    cv_.notify_all();
  }

  std::string dir_;
  bool echoLog_ = false;
  std::vector<std::pair<std::string, std::optional<std::string>>> envOverrides_;
  pid_t pid_ = -1;
  bool started_ = false;
  std::thread reader_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;  // complete stderr lines, without '\n'
  std::string partialErr_;          // stderr after the last '\n'
  std::string out_;                 // stdout
  bool exited_ = false;
  int exitStatus_ = -1;
};

}  // namespace protohost::e2e
