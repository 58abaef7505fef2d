// TrackedReactor (host/src/TrackedReactor.h), the Reactor lent to a connection's
// protocol and to a factory, on a real EventLoop: it cancels and unwatches only
// what it made (another owner's timer or watch on the same loop goes on), runs
// callbacks through its owner's guard, and schedules nothing after cancelAll.
// Also: a watch id no longer passes for a timer id, or the other way round.

#include "reactor/TrackedReactor.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <type_traits>

namespace protohost::host {
namespace {

using namespace std::chrono_literals;

// Before SDK 1.3 both were std::uint64_t, so a factory passing its watch id to
// cancel() cancelled whatever timer had that number on reactor 0.
static_assert(!std::is_convertible_v<WatchId, TimerId>, "a watch id must not pass for a timer id");
static_assert(!std::is_convertible_v<TimerId, WatchId>, "a timer id must not pass for a watch id");
static_assert(!std::is_invocable_v<decltype(&Reactor::cancel), Reactor&, WatchId>);
static_assert(!std::is_invocable_v<decltype(&Reactor::unwatch), Reactor&, TimerId>);

constexpr auto kWithin = 10s;  // generous: only a broken loop comes near it

class TrackedReactorTest : public ::testing::Test {
 protected:
  void SetUp() override { loop.startThread(); }
  void TearDown() override {
    loop.runAndWait([&] {
      mine.cancelAll();
      theirs.cancelAll();
    });
    loop.stopAndJoin();
    loop.clearCallbacks();
    if (efd >= 0) ::close(efd);
  }
  // Counts the callbacks that went through it, and keeps their exceptions from the loop.
  TrackedReactor::Guard countingGuard(std::atomic<int>& guarded) {
    return [&guarded](Reactor::Callback fn) -> Reactor::Callback {
      return [&guarded, fn = std::move(fn)] {
        ++guarded;
        try {
          fn();
        } catch (const std::exception&) {
        }
      };
    };
  }

  EventLoop loop{0, "test-loop"};
  std::atomic<int> mineGuarded{0};
  std::atomic<int> theirsGuarded{0};
  TrackedReactor mine{loop, countingGuard(mineGuarded)};      // e.g. a factory's
  TrackedReactor theirs{loop, countingGuard(theirsGuarded)};  // e.g. a connection's
  int efd = -1;
};

TEST_F(TrackedReactorTest, RefusesToCancelATimerItDidNotScheduleAndThatTimerStillFires) {
  std::promise<void> hostFired, theirsFired;
  std::atomic<bool> mineFired{false};
  bool cancelledHost = true, cancelledTheirs = true, cancelledMine = false;
  ASSERT_TRUE(loop.runAndWait([&] {
    // A timer of the host itself (a PROXY deadline, the idle sweep) and one of another plugin.
    const TimerId host = loop.callLater(20ms, [&] { hostFired.set_value(); });
    const TimerId other = theirs.callLater(20ms, [&] { theirsFired.set_value(); });
    const TimerId own = mine.callLater(20ms, [&] { mineFired = true; });
    cancelledHost = mine.cancel(host);
    cancelledTheirs = mine.cancel(other);
    cancelledMine = mine.cancel(own);
  }));
  EXPECT_FALSE(cancelledHost) << "cancelled the host's own timer";
  EXPECT_FALSE(cancelledTheirs) << "cancelled another owner's timer";
  EXPECT_TRUE(cancelledMine);
  EXPECT_EQ(hostFired.get_future().wait_for(kWithin), std::future_status::ready) << "the host's timer was cancelled";
  EXPECT_EQ(theirsFired.get_future().wait_for(kWithin), std::future_status::ready) << "the other timer was cancelled";
  EXPECT_TRUE(loop.runAndWait([] {}));
  EXPECT_FALSE(mineFired.load());
}

TEST_F(TrackedReactorTest, RefusesToUnwatchAWatchItDidNotMakeAndThatWatchStillFires) {
  efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(efd, 0);
  std::promise<void> theirsFired;
  bool once = false;
  WatchId other;
  bool unwatchedTheirs = true, unwatchedMine = false;
  ASSERT_TRUE(loop.runAndWait([&] {
    other = theirs.watchReadable(efd, [&] {
      std::uint64_t n = 0;
      if (::read(efd, &n, sizeof n) == sizeof n && !once) {
        once = true;
        theirsFired.set_value();
      }
    });
    int own = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    const WatchId mineWatch = mine.watchReadable(own, [] {});
    unwatchedTheirs = mine.unwatch(other);
    unwatchedMine = mine.unwatch(mineWatch);
    ::close(own);
  }));
  ASSERT_TRUE(other);
  EXPECT_FALSE(unwatchedTheirs) << "unwatched another owner's watch";
  EXPECT_TRUE(unwatchedMine);
  const std::uint64_t one = 1;
  ASSERT_EQ(::write(efd, &one, sizeof one), static_cast<ssize_t>(sizeof one));
  EXPECT_EQ(theirsFired.get_future().wait_for(kWithin), std::future_status::ready) << "the other watch was removed";
}

TEST_F(TrackedReactorTest, CallbacksGoThroughTheGuardAndARunTimerIsNoLongerOwned) {
  std::promise<void> fired;
  TimerId id = 0;
  ASSERT_TRUE(loop.runAndWait([&] {
    id = mine.callLater(1ms, [&] { fired.set_value(); });
    mine.post([] { throw std::runtime_error("caught by the guard, not by the loop"); });
  }));
  ASSERT_EQ(fired.get_future().wait_for(kWithin), std::future_status::ready);
  bool cancelled = true;
  EXPECT_TRUE(loop.runAndWait([&] { cancelled = mine.cancel(id); }));
  EXPECT_FALSE(cancelled) << "a one-shot timer that ran is not pending";
  EXPECT_EQ(mineGuarded.load(), 2);
  EXPECT_EQ(theirsGuarded.load(), 0);
}

TEST_F(TrackedReactorTest, CancelAllEndsOnlyItsOwnAndSchedulesNothingAfterwards) {
  std::atomic<int> mineFired{0};
  std::promise<void> theirsFired;
  TimerId later = 1, every = 1;
  WatchId watch{1};
  efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(efd, 0);
  ASSERT_TRUE(loop.runAndWait([&] {
    mine.callLater(10ms, [&] { ++mineFired; });
    mine.callEvery(5ms, [&] { ++mineFired; });
    mine.watchReadable(efd, [&] { ++mineFired; });
    theirs.callLater(30ms, [&] { theirsFired.set_value(); });
    mine.cancelAll();
    later = mine.callLater(1ms, [&] { ++mineFired; });
    every = mine.callEvery(1ms, [&] { ++mineFired; });
    watch = mine.watchReadable(efd, [&] { ++mineFired; });
  }));
  EXPECT_EQ(later, 0u);
  EXPECT_EQ(every, 0u);
  EXPECT_FALSE(watch);
  const std::uint64_t one = 1;
  ASSERT_EQ(::write(efd, &one, sizeof one), static_cast<ssize_t>(sizeof one));
  ASSERT_EQ(theirsFired.get_future().wait_for(kWithin), std::future_status::ready);
  EXPECT_TRUE(loop.runAndWait([] {}));
  EXPECT_EQ(mineFired.load(), 0);
}

}  // namespace
}  // namespace protohost::host

namespace protohost::host {
namespace {

// What connect/cancelConnect forward to: counts the calls it gets.
struct RecordingOutbound final : OutboundService {
  int& connects;
  int& closes;
  int* destroyed = nullptr;
  RecordingOutbound(int& c, int& x) : connects(c), closes(x) {}
  ~RecordingOutbound() override {
    if (destroyed) ++*destroyed;
  }
  ConnectId connect(std::string_view, std::unique_ptr<Protocol>, std::function<void(const ConnectError&)>) override {
    return ConnectId{static_cast<std::uint64_t>(++connects)};
  }
  bool cancel(ConnectId id) override { return id.value == 1; }
  void closeAll() override { ++closes; }
};
struct CountingProvider final : OutboundProvider {
  int made = 0, connects = 0, closes = 0;
  std::unique_ptr<OutboundService> outboundFor(EventLoop&, TrackedReactor&) override {
    ++made;
    return std::make_unique<RecordingOutbound>(connects, closes);
  }
};

TEST_F(TrackedReactorTest, ConnectMakesTheOwnersOutboundServiceOnFirstUseAndCancelAllClosesIt) {
  // Static: the service it makes counts into it and stays with `mine` until TearDown's cancelAll.
  static CountingProvider provider;
  provider.made = provider.connects = provider.closes = 0;
  mine.setOutboundProvider(&provider);
  ConnectId first, second, afterEnd{99};
  bool cancelled = false, cancelledUnknown = true;
  ASSERT_TRUE(loop.runAndWait([&] {
    EXPECT_FALSE(mine.cancelConnect(ConnectId{1}));  // nothing made yet
    EXPECT_EQ(provider.made, 0) << "an owner that never connects must not pay for the service";
    first = mine.connect("tcp:127.0.0.1:1", std::make_unique<Protocol>(), nullptr);
    second = mine.connect("tcp:127.0.0.1:1", std::make_unique<Protocol>(), nullptr);
    cancelled = mine.cancelConnect(first);
    cancelledUnknown = mine.cancelConnect(ConnectId{7});
    mine.cancelAll();
    afterEnd = mine.connect("tcp:127.0.0.1:1", std::make_unique<Protocol>(), [](const ConnectError&) { FAIL(); });
  }));
  EXPECT_EQ(provider.made, 1);
  EXPECT_EQ(first.value, 1u);
  EXPECT_EQ(second.value, 2u);
  EXPECT_TRUE(cancelled);
  EXPECT_FALSE(cancelledUnknown);
  EXPECT_EQ(provider.closes, 1) << "cancelAll must close the owner's outbound connections";
  EXPECT_EQ(provider.connects, 2) << "a connect after cancelAll reached the service";
  EXPECT_FALSE(afterEnd);
}

// cancelAll closes the service once and drops it: a second cancelAll (a
// connection's close, then its destructor) reaches no service, nor does a
// cancelConnect afterwards.
TEST_F(TrackedReactorTest, CancelAllClosesTheOutboundServiceOnceThenDestroysIt) {
  struct Provider final : OutboundProvider {
    int made = 0, connects = 0, closes = 0, destroyed = 0;
    std::unique_ptr<OutboundService> outboundFor(EventLoop&, TrackedReactor&) override {
      ++made;
      auto service = std::make_unique<RecordingOutbound>(connects, closes);
      service->destroyed = &destroyed;
      return service;
    }
  };
  // Outlives `mine` (TearDown's cancelAll): nothing may count into it after the body.
  static Provider provider;
  provider = Provider{};
  mine.setOutboundProvider(&provider);
  int destroyedAtFirst = -1, closesAtFirst = -1;
  bool cancelledAfter = true;
  ASSERT_TRUE(loop.runAndWait([&] {
    EXPECT_TRUE(mine.connect("tcp:127.0.0.1:1", std::make_unique<Protocol>(), nullptr));
    mine.cancelAll();
    closesAtFirst = provider.closes;
    destroyedAtFirst = provider.destroyed;
    mine.cancelAll();
    cancelledAfter = mine.cancelConnect(ConnectId{1});  // RecordingOutbound would say true
  }));
  EXPECT_EQ(provider.made, 1);
  EXPECT_EQ(closesAtFirst, 1);
  EXPECT_EQ(destroyedAtFirst, 1) << "cancelAll kept the outbound service after closing it";
  EXPECT_EQ(provider.closes, 1) << "a second cancelAll closed again";
  EXPECT_FALSE(cancelledAfter);
}

TEST_F(TrackedReactorTest, WithoutAProviderConnectFailsWithShutdownLaterThroughTheGuard) {
  std::promise<ConnectError> failed;
  bool calledInside = false;
  bool inside = false;  // test scope: onFailed runs after the posted call returned
  ASSERT_TRUE(loop.runAndWait([&] {
    inside = true;
    const ConnectId id = mine.connect("tcp:127.0.0.1:1", std::make_unique<Protocol>(), [&](const ConnectError& e) {
      calledInside = inside;
      failed.set_value(e);
    });
    EXPECT_FALSE(id);
    inside = false;
  }));
  auto future = failed.get_future();
  ASSERT_EQ(future.wait_for(kWithin), std::future_status::ready);
  EXPECT_EQ(future.get().kind, ConnectError::Kind::Shutdown);
  EXPECT_FALSE(calledInside) << "onFailed ran from inside connect";
  EXPECT_EQ(mineGuarded.load(), 1) << "onFailed did not go through the owner's guard";
}

}  // namespace
}  // namespace protohost::host
