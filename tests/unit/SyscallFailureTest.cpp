// What the host does when a system call it cannot do without fails: the
// timerfd cannot be armed (logged; the next timer retries), an adopted listen
// socket cannot be made non-blocking (refused), IPV6_V6ONLY cannot be set
// (the bind fails). These calls practically never fail on a healthy system,
// so this executable defines timerfd_settime, fcntl and setsockopt itself:
// the executable's definitions take precedence over libc's for every caller
// in the process (the host code is linked in statically), and each one fails
// on request and otherwise enters the kernel directly. Its own executable, so
// no other test runs with them replaced.

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "reactor/EventLoop.h"
#include "net/Listener.h"
#include "plugin/ListenerRuntime.h"
#include "base/Log.h"
#include "WaitUntil.h"

namespace {
std::atomic<bool> failNextTimerfdSettime{false};
std::atomic<bool> failSetFl{false};
std::atomic<bool> failV6Only{false};
}  // namespace

extern "C" int timerfd_settime(int fd, int flags, const itimerspec* value, itimerspec* old) noexcept {
  if (failNextTimerfdSettime.exchange(false)) {
    errno = EINVAL;
    return -1;
  }
  return static_cast<int>(::syscall(SYS_timerfd_settime, fd, flags, value, old));
}

extern "C" int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);  // what glibc's fcntl reads too, whatever the command
  va_end(ap);
  if (cmd == F_SETFL && failSetFl.load()) {
    errno = EBADF;
    return -1;
  }
  return static_cast<int>(::syscall(SYS_fcntl, fd, cmd, arg));
}

extern "C" int setsockopt(int fd, int level, int name, const void* value, socklen_t len) noexcept {
  if (level == IPPROTO_IPV6 && name == IPV6_V6ONLY && failV6Only.load()) {
    errno = ENOPROTOOPT;
    return -1;
  }
  return static_cast<int>(::syscall(SYS_setsockopt, fd, level, name, value, len));
}

namespace protohost::host {
namespace {

using namespace std::chrono_literals;
using testsupport::waitUntil;

// The host's log goes to a file of this test while it runs.
class LogFile {
 public:
  LogFile() : path_(std::filesystem::temp_directory_path() / ("syscall-failure-" + std::to_string(::getpid()) + ".log")) {
    std::string error;
    if (!Log::instance().openFile(path_, error)) throw std::runtime_error(error);
  }
  ~LogFile() {
    std::string error;
    Log::instance().openFile("", error);
    std::filesystem::remove(path_);
  }
  std::string text() const {
    std::ifstream in(path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  bool waitFor(const std::string& part) const {
    return waitUntil([&] { return text().find(part) != std::string::npos; }, 10s);
  }

 private:
  std::string path_;
};

TEST(SyscallFailure, TimerfdThatCannotBeArmedIsLoggedAndTheNextTimerRearmsIt) {
  LogFile log;
  EventLoop loop{0, "fault-loop"};
  loop.startThread();
  std::atomic<int> fired{0};
  failNextTimerfdSettime = true;
  ASSERT_TRUE(loop.runAndWait([&] { loop.callLater(1ms, [&] { ++fired; }); }));
  // A timer added by posted work is armed once the loop's housekeeping ends,
  // which may be just after runAndWait returned: wait for the arm, not assume it.
  EXPECT_TRUE(waitUntil([&] { return !failNextTimerfdSettime.load(); }, 10s)) << "adding a timer did not arm the timerfd";
  EXPECT_TRUE(log.waitFor("[thread=fault-loop] timerfd_settime: Invalid argument")) << log.text();
  // The next timer arms the timerfd for the earliest one, the one whose arm failed.
  ASSERT_TRUE(loop.runAndWait([&] { loop.callLater(5ms, [&] { ++fired; }); }));
  EXPECT_TRUE(waitUntil([&] { return fired.load() == 2; }, 10s)) << fired.load() << " of 2 timers fired";
  loop.stopAndJoin();
  loop.clearCallbacks();
}

class ListenerFailure : public ::testing::Test {
 protected:
  void TearDown() override {
    failSetFl = false;
    failV6Only = false;
  }
  std::shared_ptr<ListenerRuntime> runtime = [] {
    auto r = std::make_shared<ListenerRuntime>();
    r->name = "faulty";
    return r;
  }();
  EventLoop loop{0, "fault-accept"};  // never started: nothing here accepts
};

TEST_F(ListenerFailure, AdoptedSocketThatCannotBeMadeNonBlockingIsRefused) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  Listener listener(runtime, Endpoint{}, loop, {&loop});
  failSetFl = true;
  try {
    listener.adopt(fd);
    ADD_FAILURE() << "a listen socket left blocking was adopted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("(fd " + std::to_string(fd) + "): fcntl O_NONBLOCK: Bad file descriptor"),
              std::string::npos)
        << e.what();
  }
  ::close(fd);
}

TEST_F(ListenerFailure, Ipv6ListenerWhoseV6OnlyCannotBeSetDoesNotBind) {
  const int probe = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) GTEST_SKIP() << "no IPv6 on this machine";
  ::close(probe);
  Endpoint endpoint;
  endpoint.interface = "::1";
  Listener listener(runtime, endpoint, loop, {&loop});
  failV6Only = true;
  try {
    listener.bind();
    ADD_FAILURE() << "bound [::1] without IPV6_V6ONLY";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on [::1]:0: setsockopt IPV6_V6ONLY: Protocol not available"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace protohost::host
