// EventLoop on its own thread, no sockets: cross-thread post and runAndWait
// (also when the loop has exited or the call throws), timers on the timerfd,
// and "soon" work, including timers that must still fire while every round
// has soon work queued (the loop then polls without waiting).

#include "reactor/EventLoop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>

namespace protohost::host {
namespace {

using namespace std::chrono_literals;

// Generous: only a broken loop comes near it.
constexpr auto kWithin = 10s;

class EventLoopTest : public ::testing::Test {
 protected:
  void SetUp() override { loop.startThread(); }
  void TearDown() override {
    loop.stopAndJoin();
    loop.clearCallbacks();
  }
  EventLoop loop{0, "test-loop"};
};

TEST_F(EventLoopTest, RunAndWaitRunsOnTheLoopThreadAndReportsIt) {
  std::thread::id ranOn;
  EXPECT_TRUE(loop.runAndWait([&] { ranOn = std::this_thread::get_id(); }));
  EXPECT_NE(ranOn, std::this_thread::get_id());
  EXPECT_NE(ranOn, std::thread::id{});
}

TEST_F(EventLoopTest, RunAndWaitReturnsWhenTheCallThrows) {
  EXPECT_TRUE(loop.runAndWait([] { throw std::runtime_error("boom"); }));
  // The loop survived the exception.
  int value = 0;
  EXPECT_TRUE(loop.runAndWait([&] { value = 7; }));
  EXPECT_EQ(value, 7);
}

TEST_F(EventLoopTest, RunAndWaitAfterTheLoopExitedReturnsFalseAtOnce) {
  loop.stopAndJoin();
  bool ran = false;
  auto result = std::async(std::launch::async, [&] { return loop.runAndWait([&] { ran = true; }); });
  ASSERT_EQ(result.wait_for(kWithin), std::future_status::ready) << "runAndWait waited for a loop that had exited";
  EXPECT_FALSE(result.get());
  EXPECT_FALSE(ran);
}

TEST_F(EventLoopTest, PostFromManyThreadsRunsEveryCallOnce) {
  constexpr int kThreads = 4, kEach = 500;
  std::atomic<int> count{0};
  std::vector<std::thread> posters;
  for (int t = 0; t < kThreads; ++t)
    posters.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) loop.post([&] { count.fetch_add(1); });
    });
  for (auto& t : posters) t.join();
  // Posted work runs in order, so once this one ran every earlier one had.
  EXPECT_TRUE(loop.runAndWait([] {}));
  EXPECT_EQ(count.load(), kThreads * kEach);
}

TEST_F(EventLoopTest, TimerFiresOnAnIdleLoop) {
  std::promise<std::chrono::steady_clock::time_point> fired;
  const auto start = std::chrono::steady_clock::now();
  loop.post([&] { loop.callLater(20ms, [&] { fired.set_value(std::chrono::steady_clock::now()); }); });
  auto f = fired.get_future();
  ASSERT_EQ(f.wait_for(kWithin), std::future_status::ready);
  EXPECT_GE(f.get() - start, 20ms);
}

TEST_F(EventLoopTest, TimerFiresWhileEveryRoundHasSoonWork) {
  // A chain of soon work that re-queues itself keeps the loop polling with a
  // zero timeout; the timer must still fire, through the timerfd's event.
  std::atomic<bool> stop{false};
  std::atomic<long> rounds{0};
  std::function<void()> spin = [&] {
    rounds.fetch_add(1);
    if (!stop.load()) loop.runSoon(spin);
  };
  std::promise<void> fired;
  loop.post([&] {
    loop.runSoon(spin);
    loop.callLater(10ms, [&] {
      stop = true;
      fired.set_value();
    });
  });
  auto f = fired.get_future();
  ASSERT_EQ(f.wait_for(kWithin), std::future_status::ready) << "timer starved by soon work";
  EXPECT_TRUE(loop.runAndWait([] {}));
  EXPECT_GT(rounds.load(), 1);
}

TEST_F(EventLoopTest, SoonWorkQueuedBySoonWorkRunsInALaterRound) {
  std::vector<int> order;
  EXPECT_TRUE(loop.runAndWait([&] {
    loop.runSoon([&] {
      order.push_back(1);
      loop.runSoon([&] { order.push_back(3); });
    });
    loop.runSoon([&] { order.push_back(2); });
  }));
  // The nested one needs another round: wait for it through a later post.
  std::promise<void> done;
  loop.post([&] { loop.runSoon([&] { done.set_value(); }); });
  ASSERT_EQ(done.get_future().wait_for(kWithin), std::future_status::ready);
  EXPECT_TRUE(loop.runAndWait([] {}));
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(order[0], 1);
  EXPECT_EQ(order[1], 2);
  EXPECT_EQ(order[2], 3);
}

TEST_F(EventLoopTest, CancelledTimerNeverRuns) {
  std::atomic<bool> cancelledRan{false};
  std::promise<void> later;
  loop.post([&] {
    TimerId id = loop.callLater(5ms, [&] { cancelledRan = true; });
    EXPECT_TRUE(loop.cancel(id));
    loop.callLater(30ms, [&] { later.set_value(); });
  });
  ASSERT_EQ(later.get_future().wait_for(kWithin), std::future_status::ready);
  EXPECT_FALSE(cancelledRan.load());
}

}  // namespace
}  // namespace protohost::host
