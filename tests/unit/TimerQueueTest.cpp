// A reactor's timers (host/src/TimerQueue.h), driven with explicit time points.

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "reactor/TimerQueue.h"

using protohost::host::TimerQueue;
using namespace std::chrono_literals;

namespace {
const TimerQueue::Clock::time_point t0 = TimerQueue::Clock::time_point{} + 1h;
TimerQueue::Clock::time_point at(std::chrono::milliseconds ms) { return t0 + ms; }
}  // namespace

TEST(TimerQueue, RunsDueTimersInDeadlineThenInsertionOrder) {
  TimerQueue q;
  std::string order;
  q.add(at(30ms), 0ms, [&] { order += "c"; });
  q.add(at(10ms), 0ms, [&] { order += "a"; });
  q.add(at(20ms), 0ms, [&] { order += "b"; });
  q.add(at(10ms), 0ms, [&] { order += "A"; });
  EXPECT_EQ(q.size(), 4u);
  EXPECT_EQ(q.nextDue(), at(10ms));
  q.runDue(at(9ms));
  EXPECT_EQ(order, "");
  q.runDue(at(20ms));
  EXPECT_EQ(order, "aAb");
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.nextDue(), at(30ms));
  q.runDue(at(100ms));
  EXPECT_EQ(order, "aAbc");
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.nextDue(), std::nullopt);
}

TEST(TimerQueue, IdsAreUniqueAndNonZero) {
  TimerQueue q;
  auto a = q.add(at(1ms), 0ms, [] {});
  auto b = q.add(at(1ms), 0ms, [] {});
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, b);
}

TEST(TimerQueue, Cancel) {
  TimerQueue q;
  std::string order;
  auto a = q.add(at(10ms), 0ms, [&] { order += "a"; });
  auto b = q.add(at(5ms), 0ms, [&] { order += "b"; });
  EXPECT_TRUE(q.cancel(b));
  EXPECT_FALSE(q.cancel(b));
  EXPECT_FALSE(q.cancel(999));
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.nextDue(), at(10ms));  // the cancelled earlier deadline no longer counts
  q.runDue(at(10ms));
  EXPECT_EQ(order, "a");
  EXPECT_FALSE(q.cancel(a));  // already ran
}

TEST(TimerQueue, RepeatingTimerRearmsFromItsDeadlineWithoutReplayingMissedTicks) {
  TimerQueue q;
  int fired = 0;
  auto id = q.add(at(10ms), 10ms, [&] { ++fired; });
  q.runDue(at(10ms));
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(q.nextDue(), at(20ms));
  q.runDue(at(25ms));  // late: runs once, next deadline stays on the grid (30)
  EXPECT_EQ(fired, 2);
  EXPECT_EQ(q.nextDue(), at(30ms));
  q.runDue(at(95ms));  // far behind: once, then 10 ms after now
  EXPECT_EQ(fired, 3);
  EXPECT_EQ(q.nextDue(), at(105ms));
  EXPECT_TRUE(q.cancel(id));
  q.runDue(at(1000ms));
  EXPECT_EQ(fired, 3);
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.nextDue(), std::nullopt);
}

TEST(TimerQueue, RepeatingTimerCancellingItself) {
  TimerQueue q;
  int fired = 0;
  bool cancelled = false;
  TimerQueue::Id id = 0;
  id = q.add(at(10ms), 10ms, [&] {
    ++fired;
    cancelled = q.cancel(id);
  });
  q.runDue(at(10ms));
  EXPECT_TRUE(cancelled);
  q.runDue(at(100ms));
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.nextDue(), std::nullopt);
}

TEST(TimerQueue, OneShotCancellingItselfFindsNothing) {
  TimerQueue q;
  bool cancelled = true;
  TimerQueue::Id id = 0;
  id = q.add(at(10ms), 0ms, [&] { cancelled = q.cancel(id); });
  q.runDue(at(10ms));
  EXPECT_FALSE(cancelled);
}

TEST(TimerQueue, CallbackCancellingAnotherDueTimerPreventsIt) {
  TimerQueue q;
  std::string order;
  TimerQueue::Id second = 0;
  q.add(at(10ms), 0ms, [&] {
    order += "a";
    EXPECT_TRUE(q.cancel(second));
  });
  second = q.add(at(10ms), 0ms, [&] { order += "b"; });
  q.runDue(at(10ms));
  EXPECT_EQ(order, "a");
}

TEST(TimerQueue, TimerAddedDuringRunDueWaitsForTheNextRound) {
  TimerQueue q;
  std::string order;
  q.add(at(10ms), 0ms, [&] {
    order += "a";
    q.add(at(0ms), 0ms, [&] { order += "n"; });  // already due, but added in this round
  });
  q.add(at(20ms), 0ms, [&] { order += "b"; });
  q.runDue(at(20ms));
  EXPECT_EQ(order, "ab");
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.nextDue(), at(0ms));
  q.runDue(at(20ms));
  EXPECT_EQ(order, "abn");
}

TEST(TimerQueue, ZeroIntervalRepeaterAddingItselfStillEnds) {
  // A callback that keeps scheduling an immediately due timer must not spin runDue forever.
  TimerQueue q;
  int fired = 0;
  std::function<void()> again = [&] {
    if (++fired < 100) q.add(at(0ms), 0ms, again);  // bounded, so a regression fails instead of hanging
  };
  q.add(at(0ms), 0ms, again);
  q.runDue(at(0ms));
  EXPECT_EQ(fired, 1);
  q.runDue(at(0ms));
  EXPECT_EQ(fired, 2);
}

TEST(TimerQueue, ExceptionsGoToOnErrorAndTheRoundContinues) {
  TimerQueue q;
  std::string order;
  std::vector<std::string> errors;
  q.add(at(1ms), 0ms, [&] {
    order += "1";
    throw std::runtime_error("first");
  });
  q.add(at(2ms), 5ms, [&] {
    order += "2";
    throw 42;
  });
  q.add(at(3ms), 0ms, [&] { order += "3"; });
  q.runDue(at(3ms), [&](std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      errors.push_back(ex.what());
    } catch (...) {
      errors.push_back("non-standard");
    }
  });
  EXPECT_EQ(order, "123");
  EXPECT_EQ(errors, (std::vector<std::string>{"first", "non-standard"}));
  EXPECT_EQ(q.size(), 1u);  // the throwing repeater stays scheduled
  EXPECT_EQ(q.nextDue(), at(7ms));
}

TEST(TimerQueue, ExceptionWithoutOnErrorIsSwallowed) {
  TimerQueue q;
  int after = 0;
  q.add(at(1ms), 0ms, [] { throw std::runtime_error("x"); });
  q.add(at(1ms), 0ms, [&] { ++after; });
  EXPECT_NO_THROW(q.runDue(at(1ms)));
  EXPECT_EQ(after, 1);
}

TEST(TimerQueue, ClearDropsEverythingWithoutRunning) {
  TimerQueue q;
  int fired = 0;
  auto id = q.add(at(1ms), 0ms, [&] { ++fired; });
  q.add(at(2ms), 1ms, [&] { ++fired; });
  q.clear();
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.nextDue(), std::nullopt);
  EXPECT_FALSE(q.cancel(id));
  q.runDue(at(100ms));
  EXPECT_EQ(fired, 0);
}

TEST(TimerQueue, ClearFromInsideACallbackStopsTheRound) {
  TimerQueue q;
  std::string order;
  q.add(at(1ms), 1ms, [&] {
    order += "a";
    q.clear();
  });
  q.add(at(1ms), 0ms, [&] { order += "b"; });
  q.runDue(at(1ms));
  EXPECT_EQ(order, "a");
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.nextDue(), std::nullopt);
  q.runDue(at(100ms));
  EXPECT_EQ(order, "a");
}

TEST(TimerQueue, CallbackStateIsDestroyedWhenAOneShotRuns) {
  TimerQueue q;
  auto token = std::make_shared<int>(1);
  std::weak_ptr<int> watch = token;
  q.add(at(1ms), 0ms, [token] { (void)token; });
  token.reset();
  EXPECT_FALSE(watch.expired());
  q.runDue(at(1ms));
  EXPECT_TRUE(watch.expired());
}
