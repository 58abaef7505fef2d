#pragma once
/// @file HostProcess.h
/// End-to-end test harness: runs the real `host` binary as a child process.
///
/// Header-only, standard library + POSIX (and GoogleTest through
/// ChildProcess.h, for its sanitizer-report check). Typical use:
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
/// The host runs as a ChildProcess (ChildProcess.h): every wait is a condition
/// wait with a timeout; its stdout and stderr are read by one thread, which
/// also reaps it once both pipes hit EOF. The destructor ends a host that is
/// still running (SIGTERM, then SIGKILL after ChildProcess::kStopGrace), fails
/// the test when the host's stderr holds a sanitizer report, and removes the
/// temporary directory (config, plugin links, anything written with writeFile).
///
/// Paths come from the compile definitions of the CMake target
/// protohost_test_support: PROTOHOST_HOST_BINARY, PROTOHOST_PLUGIN_DIR,
/// PROTOHOST_TEST_PLUGIN_DIR. Set PROTOHOST_E2E_ECHO_LOG=1 in the environment
/// to copy the host's stderr to the test's stderr as it arrives.

#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "ChildProcess.h"

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
///
/// Threads: set it up and start it on one thread (the constructor, writeFile,
/// writeConfig, linkPlugins, setEnv, setCommandPrefix, start, startWithConfig,
/// run); after start() returns, the other methods may be called from any
/// thread at the same time. The destructor must not overlap with any call.
class HostProcess {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kDefaultTimeout = testsupport::ChildProcess::kDefaultTimeout;

  HostProcess() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "protohost-e2e-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::system_error(errno, std::generic_category(), "mkdtemp");
    dir_ = tmpl;
    const char* echo = std::getenv("PROTOHOST_E2E_ECHO_LOG");
    echoLog_ = echo && *echo && std::string(echo) != "0";
  }

  /// Ends a host that is still running (see ~ChildProcess: SIGTERM, SIGKILL
  /// when that does not end it in time; a sanitizer report on its stderr fails
  /// the test), then removes dir(). Must not overlap with any other call.
  ~HostProcess() {
    child_.reset();
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

  /// Runs the host under a command that execs it, e.g. {"prlimit",
  /// "--nofile=64:64"}: the command line becomes PREFIX... host ARGS..., with
  /// PREFIX[0] looked up in PATH. pid() is then the command's pid, which is the
  /// host's once the command has exec'd it. Call before start().
  void setCommandPrefix(std::vector<std::string> prefix) { prefix_ = std::move(prefix); }

  /// Starts `host ARGS...` (argv[0] is the binary). stdin is /dev/null;
  /// stdout and stderr are captured. Throws when the spawn fails. On the
  /// owning thread, before any other thread uses this object.
  void start(const std::vector<std::string>& args) {
    if (child_) throw std::logic_error("HostProcess::start called twice");
    testsupport::ChildProcess::Options options;
    options.argv = prefix_;
    options.argv.emplace_back(kHostBinary);
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    options.searchPath = !prefix_.empty();
    options.env = envOverrides_;
    if (echoLog_) options.echoLabel = "host";
    child_ = std::make_unique<testsupport::ChildProcess>(std::move(options));
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

  /// The host's pid; -1 before start().
  pid_t pid() const { return child_ ? child_->pid() : -1; }

  /// True while the process has not exited (been reaped).
  bool running() const { return child_ && child_->running(); }

  /// Sends @p sig; returns false when the process has already exited (or not started).
  bool signal(int sig) { return child_ && child_->signal(sig); }

  /// Stops (true) or resumes (false) reading the host's stderr, which then
  /// fills its pipe like a log reader that is stuck (ChildProcess::pauseStderr).
  /// Log waits (waitForLog) see only what was read.
  void pauseStderr(bool paused) {
    if (child_) child_->pauseStderr(paused);
  }

  /// Waits until the process exits. Returns its exit status (0-255), or
  /// 128 + N when signal N killed it (as a shell reports it); nullopt on
  /// timeout (at once when not started).
  std::optional<int> waitExit(std::chrono::milliseconds timeout = kDefaultTimeout) {
    return child_ ? child_->waitExit(timeout) : std::nullopt;
  }

  /// Number of complete stderr lines so far: pass it as @p since to wait only
  /// for lines logged after this point.
  std::size_t logLineCount() const { return child_ ? child_->logLineCount() : 0; }

  /// Waits until a stderr line (index >= @p since) matches @p re (std::regex_search)
  /// and returns that line; nullopt when the timeout passes or the process
  /// exits without printing one (at once when not started).
  std::optional<std::string> waitForLog(const std::regex& re, std::chrono::milliseconds timeout = kDefaultTimeout,
                                        std::size_t since = 0) {
    return child_ ? child_->waitForLog(re, timeout, since) : std::nullopt;
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
  std::string stderrText() const { return child_ ? child_->stderrText() : std::string(); }
  std::string stdoutText() const { return child_ ? child_->stdoutText() : std::string(); }

  /// Resident set size (VmRSS of /proc/PID/status) in KiB; -1 when unreadable.
  long rssKiB() const {
    std::ifstream in("/proc/" + std::to_string(pid()) + "/status");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    return -1;
  }

  /// CPU time used so far (utime + stime of /proc/PID/stat), in clock ticks
  /// (see clockTicksPerSecond()); -1 when unreadable.
  long long cpuTicks() const { return cpuTicksOf(pid()); }

  /// The same for any process @p pid.
  static long long cpuTicksOf(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
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
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid()) + "/task", ec)) {
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
  std::string dir_;
  bool echoLog_ = false;
  std::vector<std::pair<std::string, std::optional<std::string>>> envOverrides_;
  std::vector<std::string> prefix_;
  std::unique_ptr<testsupport::ChildProcess> child_;
};

}  // namespace protohost::e2e
