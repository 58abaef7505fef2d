#pragma once
/// @file ChildProcess.h
/// The one process spawner of the test harness. HostProcess (HostProcess.h)
/// runs the host binary with it, also under a command such as `prlimit`
/// (the reliability suite); the operations tests run setpriv,
/// systemd-socket-activate or the host with LISTEN_* variables and inherited
/// descriptors with it directly.
///
/// Header-only, standard library + POSIX, and GoogleTest for one thing: the
/// destructor fails the running test (ADD_FAILURE) when the child's stderr
/// holds a sanitizer report (SanitizerReport.h), whatever the test checked.
///
/// What every child gets: stdin from /dev/null; stdout and stderr into pipes of
/// this process; default signal dispositions and an empty signal mask, whatever
/// the test process did (the host blocks what it handles itself); this
/// process's environment minus systemd's LISTEN_FDS, LISTEN_PID and
/// LISTEN_FDNAMES, with Options::env applied on top.
///
/// One reader thread per child collects stdout and stderr (stderr as lines)
/// and reaps the child once both pipes reach EOF, under the mutex, so signal()
/// never targets a recycled pid. Every wait is a condition wait with a timeout.
///
/// A child still running at destruction gets SIGTERM, and SIGKILL only when it
/// has not exited kStopGrace later: the host's own shutdown then runs after
/// every test that leaves it running, so the sanitizer builds see its races.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <iostream>
#include <mutex>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "SanitizerReport.h"

extern char** environ;

namespace protohost::testsupport {

/// A running child process with its stdout and stderr captured.
///
/// Threads: once constructed, every method may be called from any thread at
/// the same time; only the destructor must not overlap with another call.
/// The object is neither copyable nor movable (its reader thread points to it).
class ChildProcess {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kDefaultTimeout{10000};
  /// How long the destructor waits after SIGTERM before it sends SIGKILL.
  static constexpr std::chrono::milliseconds kStopGrace{2000};

  /// (Every member has a default, "= {}" included, so that designated
  /// initializers may leave any of them out without a warning.)
  struct Options {
    /// The command line; argv[0] is the program: a path, or (searchPath) a
    /// name looked up in PATH like a shell does.
    std::vector<std::string> argv = {};
    bool searchPath = false;
    /// Environment changes: {NAME, VALUE} sets NAME, {NAME, nullopt} removes it.
    std::vector<std::pair<std::string, std::optional<std::string>>> env = {};
    /// {fd in this process, fd number in the child}: dup2'd in the child, so
    /// the child keeps it open across exec whatever its FD_CLOEXEC here.
    std::vector<std::pair<int, int>> inheritFds = {};
    /// Non-empty: also copy each stderr line to this process's stderr as it
    /// arrives, as "[LABEL PID] line".
    std::string echoLabel = {};
  };

  /// Starts the child; throws std::system_error when the spawn fails (e.g. no
  /// such program). Call from any thread; the object is shared only after this returns.
  explicit ChildProcess(Options options) : echoLabel_(std::move(options.echoLabel)) {
    if (options.argv.empty()) throw std::invalid_argument("ChildProcess: empty argv");
    for (const auto& arg : options.argv) command_ += (command_.empty() ? "" : " ") + arg;
    int outPipe[2], errPipe[2];
    if (::pipe2(wakePipe_, O_CLOEXEC | O_NONBLOCK) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
    if (::pipe2(outPipe, O_CLOEXEC) != 0) {
      int e = errno;
      closeBoth(wakePipe_);
      throw std::system_error(e, std::generic_category(), "pipe2");
    }
    if (::pipe2(errPipe, O_CLOEXEC) != 0) {
      int e = errno;
      closeBoth(outPipe);
      closeBoth(wakePipe_);
      throw std::system_error(e, std::generic_category(), "pipe2");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1);  // dup2 clears O_CLOEXEC
    posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2);
    for (auto [from, to] : options.inheritFds) posix_spawn_file_actions_adddup2(&actions, from, to);

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

    std::vector<char*> argv;
    for (auto& s : options.argv) argv.push_back(s.data());
    argv.push_back(nullptr);
    std::vector<std::string> envStrings = environment(options.env);
    std::vector<char*> envp;
    for (auto& e : envStrings) envp.push_back(e.data());
    envp.push_back(nullptr);

    pid_t pid = 0;
    const char* program = options.argv[0].c_str();
    int rc = options.searchPath ? ::posix_spawnp(&pid, program, &actions, &attr, argv.data(), envp.data())
                                : ::posix_spawn(&pid, program, &actions, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(outPipe[1]);
    ::close(errPipe[1]);
    if (rc != 0) {
      ::close(outPipe[0]);
      ::close(errPipe[0]);
      closeBoth(wakePipe_);
      throw std::system_error(rc, std::generic_category(),
                              std::string(options.searchPath ? "posix_spawnp " : "posix_spawn ") + program);
    }
    pid_ = pid;
    reader_ = std::thread([this, out = outPipe[0], err = errPipe[0]] { readLoop(out, err); });
  }

  /// Ends a child still running (SIGTERM; SIGKILL when it has not exited
  /// kStopGrace later), then waits for the reader thread (which reaps it).
  /// When the child's stderr holds a sanitizer report, fails the current test
  /// with it (ADD_FAILURE, on the destroying thread). Must not overlap with any
  /// other call.
  ~ChildProcess() {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      stderrPaused_ = false;  // the reader must see stderr's EOF
      wakeReader();
      if (!exited_) {
        ::kill(pid_, SIGTERM);  // not reaped yet: the pid is still ours
        if (!cv_.wait_for(lock, kStopGrace, [this] { return exited_; })) ::kill(pid_, SIGKILL);
      }
    }
    if (reader_.joinable()) reader_.join();
    closeBoth(wakePipe_);
    if (std::string report = findSanitizerReport(lines_); !report.empty())
      ADD_FAILURE() << "child " << pid_ << " (" << command_ << ") reported a sanitizer error on stderr:\n" << report;
  }

  /// Stops (true) or resumes (false) reading the child's stderr: while paused,
  /// the pipe fills up and the child's writes to stderr block, like a stuck
  /// log reader's. Returns once the reader has taken the change (a read in
  /// progress may finish first).
  void pauseStderr(bool paused) {
    std::unique_lock<std::mutex> lock(mutex_);
    stderrPaused_ = paused;
    wakeReader();
    cv_.wait(lock, [&] { return readerSawPause_ == paused || exited_; });
  }

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  /// The child's pid (also after it exited, when it may name another process).
  pid_t pid() const { return pid_; }

  /// True until the child has exited and been reaped.
  bool running() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return !exited_;
  }

  /// Sends @p sig; returns false when the child has already exited.
  bool signal(int sig) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (exited_) return false;
    return ::kill(pid_, sig) == 0;
  }

  /// Waits until the child exits. Returns its exit status (0-255), or 128 + N
  /// when signal N killed it (as a shell reports it); nullopt on timeout.
  std::optional<int> waitExit(std::chrono::milliseconds timeout = kDefaultTimeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!cv_.wait_for(lock, timeout, [this] { return exited_; })) return std::nullopt;
    return exitStatus_;
  }

  /// Number of complete stderr lines so far: pass it as @p since to wait only
  /// for lines written after this point.
  std::size_t logLineCount() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_.size();
  }

  /// Waits until a stderr line (index >= @p since) matches @p re (std::regex_search)
  /// and returns that line; nullopt when the timeout passes or the child exits
  /// without writing one.
  std::optional<std::string> waitForLog(const std::regex& re, std::chrono::milliseconds timeout = kDefaultTimeout,
                                        std::size_t since = 0) {
    std::unique_lock<std::mutex> lock(mutex_);
    const auto deadline = Clock::now() + timeout;
    std::size_t next = since;
    for (;;) {
      for (; next < lines_.size(); ++next)
        if (std::regex_search(lines_[next], re)) return lines_[next];
      if (exited_) return std::nullopt;  // no more lines will come
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && next == lines_.size()) return std::nullopt;
    }
  }
  std::optional<std::string> waitForLog(const std::string& re, std::chrono::milliseconds timeout = kDefaultTimeout,
                                        std::size_t since = 0) {
    return waitForLog(std::regex(re), timeout, since);
  }

  /// Everything the child wrote to stderr / stdout so far.
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

 private:
  static void closeBoth(int p[2]) {
    ::close(p[0]);
    ::close(p[1]);
  }

  /// This process's environment minus LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES
  /// and every name in @p changes, plus the changes that set a value.
  static std::vector<std::string> environment(
      const std::vector<std::pair<std::string, std::optional<std::string>>>& changes) {
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) {
      std::string_view v(*e);
      std::string_view name = v.substr(0, v.find('='));
      bool drop = name == "LISTEN_FDS" || name == "LISTEN_PID" || name == "LISTEN_FDNAMES";
      for (const auto& change : changes) drop = drop || name == change.first;
      if (!drop) env.emplace_back(v);
    }
    for (const auto& [name, value] : changes)
      if (value) env.push_back(name + "=" + *value);
    return env;
  }

  // Reader thread: collects stdout and stderr until both reach EOF (the child
  // exited, or closed them), then reaps it. Reaping happens under the mutex so
  // that signal() never targets a recycled pid.
  void readLoop(int outFd, int errFd) {
    int pipes[2] = {outFd, errFd};  // -1 once at EOF
    pollfd fds[3] = {{outFd, POLLIN, 0}, {errFd, POLLIN, 0}, {wakePipe_[0], POLLIN, 0}};
    char buf[65536];
    while (pipes[0] >= 0 || pipes[1] >= 0) {
      bool paused;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        paused = stderrPaused_;
        readerSawPause_ = paused;
        cv_.notify_all();
      }
      // poll() ignores a negative fd: that is how a paused stderr stays unread.
      fds[0].fd = pipes[0];
      fds[1].fd = paused ? -1 : pipes[1];
      int n = ::poll(fds, 3, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds[2].revents & POLLIN)
        while (::read(wakePipe_[0], buf, sizeof buf) > 0) {
        }
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
          ::close(pipes[i]);
          pipes[i] = -1;
          continue;
        }
        append(i == 1, std::string_view(buf, static_cast<std::size_t>(got)));
      }
    }
    for (int fd : pipes)
      if (fd >= 0) ::close(fd);
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
        if (!echoLabel_.empty()) std::cerr << "[" << echoLabel_ << " " << pid_ << "] " << lines_.back() << "\n";
        start = nl + 1;
      }
      partialErr_.erase(0, start);
    }
    cv_.notify_all();
  }

  void wakeReader() {
    const char one = 1;
    [[maybe_unused]] ssize_t n = ::write(wakePipe_[1], &one, 1);  // full: a wake-up is pending anyway
  }

  const std::string echoLabel_;
  std::string command_;  // argv joined with spaces, for the sanitizer failure message
  pid_t pid_ = -1;
  int wakePipe_[2] = {-1, -1};  // pauseStderr and the destructor wake the reader's poll
  std::thread reader_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;  // complete stderr lines, without '\n'
  std::string partialErr_;          // stderr after the last '\n'
  std::string out_;                 // stdout
  bool exited_ = false;
  int exitStatus_ = -1;
  bool stderrPaused_ = false;    // pauseStderr's request
  bool readerSawPause_ = false;  // what the reader polls with now
};

}  // namespace protohost::testsupport
