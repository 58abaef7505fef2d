// EventLoop::watchFd / modifyWatch over real sockets (a socketpair) on a
// running loop, TrackedReactor's tracking of them, and LoopHandleAnchor: a
// post from another thread runs on the loop while the target lives, and
// fails (the call destroyed unrun) once the target ended or the loop is gone.

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "reactor/EventLoop.h"
#include "reactor/LoopHandleAnchor.h"
#include "reactor/TrackedReactor.h"
#include "WaitUntil.h"

namespace protohost::host {
namespace {

using namespace std::chrono_literals;

class FdWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    loop.startThread();
  }
  void TearDown() override {
    loop.stopAndJoin();
    loop.clearCallbacks();
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
  // Runs @p fn on the loop thread and returns its result.
  template <class F>
  auto onLoop(F fn) {
    decltype(fn()) result{};
    EXPECT_TRUE(loop.runAndWait([&] { result = fn(); }));
    return result;
  }
  EventLoop loop{0, "watch-loop"};
  int fds[2] = {-1, -1};
};

TEST_F(FdWatchTest, WriteInterestReportsWritableAndReadInterestWaitsForData) {
  std::atomic<int> writable{0}, readable{0};
  WatchId id{};
  // Made on the loop thread: the callback, which reads id, cannot run before it is set.
  ASSERT_TRUE(loop.runAndWait([&] {
    id = loop.watchFd(fds[0], FdInterest::Write, [&](FdEvents e) {
      if (e.writable) ++writable;
      if (e.readable) ++readable;
      loop.modifyWatch(id, FdInterest::Read);  // one writable report is enough
    });
  }));
  ASSERT_TRUE(id);
  ASSERT_TRUE(testsupport::waitUntil([&] { return writable.load() >= 1; }, 5s));
  EXPECT_EQ(readable.load(), 0) << "no data was sent: readable must not be reported";
  ASSERT_EQ(::write(fds[1], "x", 1), 1);
  ASSERT_TRUE(testsupport::waitUntil([&] { return readable.load() >= 1; }, 5s));
  EXPECT_EQ(writable.load(), 1) << "write interest was dropped by modifyWatch in the first callback";
  EXPECT_TRUE(onLoop([&] { return loop.unwatch(id); }));
}

TEST_F(FdWatchTest, NoneKeepsTheWatchButReportsNothingUntilInterestReturns) {
  std::atomic<int> calls{0};
  ASSERT_EQ(::write(fds[1], "x", 1), 1);  // readable from the start
  WatchId id = onLoop([&] { return loop.watchFd(fds[0], FdInterest::None, [&](FdEvents) { ++calls; }); });
  ASSERT_TRUE(id);
  ::close(fds[1]);  // a hang-up would be reported if the fd were in the set
  fds[1] = -1;
  // Several rounds of the loop pass without a call.
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(loop.runAndWait([] {}));
  EXPECT_EQ(calls.load(), 0);
  EXPECT_TRUE(onLoop([&] { return loop.modifyWatch(id, FdInterest::Read); }));
  ASSERT_TRUE(testsupport::waitUntil([&] { return calls.load() >= 1; }, 5s));
  EXPECT_TRUE(onLoop([&] { return loop.unwatch(id); }));
}

TEST_F(FdWatchTest, PeerCloseIsReportedAsErrorWithReadable) {
  std::promise<FdEvents> got;
  std::atomic<bool> once{false};
  WatchId id{};
  ASSERT_TRUE(loop.runAndWait([&] {
    id = loop.watchFd(fds[0], FdInterest::Read, [&](FdEvents e) {
      if (!once.exchange(true)) got.set_value(e);
      loop.unwatch(id);  // from its own callback
    });
  }));
  ASSERT_TRUE(id);
  ::close(fds[1]);
  fds[1] = -1;
  auto future = got.get_future();
  ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
  const FdEvents e = future.get();
  EXPECT_TRUE(e.readable);  // read() returns 0: the EOF
  EXPECT_TRUE(e.error);     // EPOLLHUP: both directions are gone
  EXPECT_FALSE(e.writable);
}

TEST_F(FdWatchTest, OneWatchPerFdAndBadFdsAreRefused) {
  WatchId first = onLoop([&] { return loop.watchFd(fds[0], FdInterest::None, [](FdEvents) {}); });
  ASSERT_TRUE(first);
  EXPECT_FALSE(onLoop([&] { return loop.watchFd(fds[0], FdInterest::Read, [](FdEvents) {}); }))
      << "a second watch of the same fd (the first not even in the epoll set) must fail";
  EXPECT_FALSE(onLoop([&] { return loop.watchReadable(fds[0], [] {}); }));
  EXPECT_FALSE(onLoop([&] { return loop.watchFd(-1, FdInterest::Read, [](FdEvents) {}); }));
  const int closed = ::dup(fds[1]);
  ::close(closed);
  EXPECT_FALSE(onLoop([&] { return loop.watchFd(closed, FdInterest::None, [](FdEvents) {}); }));
  EXPECT_FALSE(onLoop([&] { return loop.modifyWatch(WatchId{999999}, FdInterest::Read); }));
  EXPECT_TRUE(onLoop([&] { return loop.unwatch(first); }));
  EXPECT_TRUE(onLoop([&] { return bool(loop.watchFd(fds[0], FdInterest::Read, [](FdEvents) {})); }))
      << "after unwatch the fd may be watched again";
}

TEST_F(FdWatchTest, TrackedReactorGuardsCallbacksAndUnwatchesOnCancelAll) {
  std::atomic<int> guardRuns{0}, calls{0};
  auto tracked = std::make_unique<TrackedReactor>(loop, [&](Reactor::Callback fn) -> Reactor::Callback {
    return [&guardRuns, fn = std::move(fn)] {
      ++guardRuns;
      fn();
    };
  });
  WatchId id{};
  ASSERT_TRUE(loop.runAndWait([&] {
    id = tracked->watchFd(fds[0], FdInterest::Write, [&](FdEvents e) {
      if (e.writable) ++calls;
      tracked->modifyWatch(id, FdInterest::Read);
    });
  }));
  ASSERT_TRUE(id);
  ASSERT_TRUE(testsupport::waitUntil([&] { return calls.load() == 1; }, 5s));
  EXPECT_EQ(guardRuns.load(), 1);
  WatchId foreign = onLoop([&] { return loop.watchFd(fds[1], FdInterest::None, [](FdEvents) {}); });
  EXPECT_FALSE(onLoop([&] { return tracked->modifyWatch(foreign, FdInterest::Read); }))
      << "a TrackedReactor changes only the watches it made";
  ASSERT_TRUE(loop.runAndWait([&] { tracked->cancelAll(); }));
  EXPECT_FALSE(onLoop([&] { return loop.unwatch(id); })) << "cancelAll unwatched it already";
  EXPECT_FALSE(onLoop([&] { return tracked->watchFd(fds[0], FdInterest::Read, [](FdEvents) {}); }));
  EXPECT_TRUE(onLoop([&] { return loop.unwatch(foreign); }));
}

// A target on the loop: deliver checks the target and records the call.
struct Target {
  std::shared_ptr<int> code = std::make_shared<int>(0);  // stands for the plugin library
  std::atomic<int> delivered{0};
  std::thread::id ranOn;
};

std::shared_ptr<LoopHandleAnchor> anchorFor(EventLoop& loop, Target& target) {
  return std::make_shared<LoopHandleAnchor>(loop.gate(), target.code, [&target](LoopHandleAnchor::Call& call) {
    target.ranOn = std::this_thread::get_id();
    call(nullptr);
    ++target.delivered;
  });
}

TEST_F(FdWatchTest, AHandlePostFromAnotherThreadRunsOnTheLoop) {
  Target target;
  auto anchor = anchorFor(loop, target);
  std::atomic<int> ran{0};
  std::thread poster([&] {
    for (int i = 0; i < 100; ++i) EXPECT_TRUE(anchor->post([&](Transport*) { ++ran; }));
  });
  poster.join();
  ASSERT_TRUE(testsupport::waitUntil([&] { return ran.load() == 100; }, 5s));
  EXPECT_EQ(target.delivered.load(), 100);
  std::thread::id loopThread;
  ASSERT_TRUE(loop.runAndWait([&] { loopThread = std::this_thread::get_id(); }));
  EXPECT_EQ(target.ranOn, loopThread);
  EXPECT_TRUE(anchor->alive());
}

TEST_F(FdWatchTest, AfterTheTargetEndsPostsFailAndQueuedCallsAreDroppedUnrun) {
  Target target;
  auto anchor = anchorFor(loop, target);
  std::promise<void> release;
  auto released = release.get_future().share();
  // Block the loop so that a call is queued behind the end.
  loop.post([released] { released.wait(); });
  auto destroyed = std::make_shared<std::atomic<bool>>(false);
  struct Flag {
    std::shared_ptr<std::atomic<bool>> f;
    ~Flag() {
      if (f) *f = true;
    }
  };
  auto flag = std::make_shared<Flag>(Flag{destroyed});
  std::atomic<bool> ran{false};
  loop.post([anchor] { anchor->end(); });  // the target ends before the call queued next
  ASSERT_TRUE(anchor->post([flag, &ran](Transport*) { ran = true; })) << "still alive: the end has not run yet";
  flag.reset();
  release.set_value();
  ASSERT_TRUE(loop.runAndWait([] {}));
  ASSERT_TRUE(loop.runAndWait([] {}));
  EXPECT_FALSE(ran.load());
  EXPECT_TRUE(destroyed->load()) << "the unrun call is destroyed, releasing its captures";
  EXPECT_FALSE(anchor->alive());
  EXPECT_FALSE(anchor->post([&](Transport*) { ran = true; }));
  EXPECT_EQ(target.delivered.load(), 0);
}

TEST_F(FdWatchTest, PostsFailOnceThePluginCodeOrTheLoopIsGone) {
  Target target;
  auto anchor = anchorFor(loop, target);
  target.code.reset();  // the plugin is being unloaded
  EXPECT_FALSE(anchor->post([](Transport*) {}));

  Target other;
  std::shared_ptr<LoopHandleAnchor> orphan;
  {
    EventLoop gone{1, "gone-loop"};
    gone.startThread();
    orphan = anchorFor(gone, other);
    EXPECT_TRUE(orphan->post([](Transport*) {}));
    gone.stopAndJoin();
    EXPECT_FALSE(orphan->post([](Transport*) {})) << "the loop exited";
    gone.clearCallbacks();
  }
  EXPECT_FALSE(orphan->post([](Transport*) {})) << "the loop is destroyed: the gate is detached";
}

}  // namespace
}  // namespace protohost::host
