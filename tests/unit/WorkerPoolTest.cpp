// WorkerPool (host/src/reactor/WorkerPool.h): named threads, a bounded queue
// that refuses at once instead of blocking, and a stop that drops queued jobs
// and waits for running ones only up to its deadline.

#include "reactor/WorkerPool.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>

#include "WaitUntil.h"

namespace protohost::host {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testsupport::waitUntil;

constexpr auto kWithin = 10s;  // generous: only a broken pool comes near it

// A job that blocks its worker until release() (shared: it may outlive the test's scope on a detached thread).
struct Gate {
  std::promise<void> open;
  std::shared_future<void> opened = open.get_future().share();
  std::atomic<int> entered{0};
  std::atomic<int> left{0};
  void release() { open.set_value(); }
};

std::function<void()> blockOn(const std::shared_ptr<Gate>& gate) {
  return [gate] {
    ++gate->entered;
    gate->opened.wait();
    ++gate->left;
  };
}

TEST(WorkerPool, ThreadsAreNamedPhWorker) {
  WorkerPool pool(2, 8);
  std::promise<std::string> name;
  ASSERT_EQ(pool.submit(
                [&] {
                  char buf[16] = {};
                  pthread_getname_np(pthread_self(), buf, sizeof buf);
                  name.set_value(buf);
                },
                [] {}),
            WorkStatus::Queued);
  auto got = name.get_future();
  ASSERT_EQ(got.wait_for(kWithin), std::future_status::ready);
  EXPECT_EQ(got.get().rfind("ph-worker-", 0), 0u);
}

TEST(WorkerPool, AFullQueueIsRefusedAtOnceAndCounted) {
  WorkerPool pool(1, 2);
  auto gate = std::make_shared<Gate>();
  ASSERT_EQ(pool.submit(blockOn(gate), [] {}), WorkStatus::Queued);
  ASSERT_TRUE(waitUntil([&] { return gate->entered == 1; }, kWithin));  // the only worker is busy
  std::atomic<int> ran{0}, completed{0};
  EXPECT_EQ(pool.submit([&] { ++ran; }, [&] { ++completed; }), WorkStatus::Queued);
  EXPECT_EQ(pool.submit([&] { ++ran; }, [&] { ++completed; }), WorkStatus::Queued);
  auto refused = std::make_shared<int>(0);
  const auto before = Clock::now();
  EXPECT_EQ(pool.submit([refused] {}, [refused] {}), WorkStatus::QueueFull);
  EXPECT_LT(Clock::now() - before, 1s) << "submit waited for room instead of refusing";
  EXPECT_EQ(refused.use_count(), 1) << "the refused job's functions were kept";
  WorkerPool::Figures f = pool.figures();
  EXPECT_EQ(f.queued, 2u);
  EXPECT_EQ(f.running, 1u);
  EXPECT_EQ(f.rejected, 1u);
  EXPECT_EQ(f.completed, 0u);
  gate->release();
  ASSERT_TRUE(waitUntil([&] { return completed == 2; }, kWithin));
  EXPECT_EQ(ran, 2);
  ASSERT_TRUE(waitUntil([&] { return pool.figures().completed == 3; }, kWithin));
  f = pool.figures();
  EXPECT_EQ(f.queued, 0u);
  EXPECT_EQ(f.running, 0u);
  EXPECT_EQ(f.rejected, 1u);
}

TEST(WorkerPool, StopDropsQueuedWorkAndWaitsForRunningWorkOnlyUntilItsDeadline) {
  auto gate = std::make_shared<Gate>();
  auto completedLate = std::make_shared<std::atomic<int>>(0);
  std::atomic<int> queuedRan{0}, queuedCompleted{0};
  {
    WorkerPool pool(1, 8);
    ASSERT_EQ(pool.submit(blockOn(gate), [completedLate] { ++*completedLate; }), WorkStatus::Queued);
    ASSERT_TRUE(waitUntil([&] { return gate->entered == 1; }, kWithin));
    ASSERT_EQ(pool.submit([&] { ++queuedRan; }, [&] { ++queuedCompleted; }), WorkStatus::Queued);
    const auto before = Clock::now();
    EXPECT_EQ(pool.stop(before + 200ms), 1u) << "the blocked job should still be running";
    const auto took = Clock::now() - before;
    EXPECT_GE(took, 200ms) << "did not wait for the running job";
    EXPECT_LT(took, 5s) << "waited past the deadline";
    EXPECT_EQ(pool.submit([] {}, [] {}), WorkStatus::ShuttingDown);
    EXPECT_EQ(pool.stop(Clock::now() + 10s), 1u) << "a second stop answers the same, at once";
  }  // the pool is gone; its detached thread still runs the blocked job
  gate->release();
  ASSERT_TRUE(waitUntil([&] { return gate->left == 1; }, kWithin));
  EXPECT_EQ(queuedRan, 0) << "queued work ran after stop";
  EXPECT_EQ(queuedCompleted, 0);
  EXPECT_EQ(*completedLate, 0) << "complete() ran after stop() returned";
}

TEST(WorkerPool, WorkThatEndsWithinTheStopDeadlineIsJoinedAndCompleted) {
  auto gate = std::make_shared<Gate>();
  std::atomic<int> completed{0};
  WorkerPool pool(2, 8);
  ASSERT_EQ(pool.submit(blockOn(gate), [&] { ++completed; }), WorkStatus::Queued);
  ASSERT_TRUE(waitUntil([&] { return gate->entered == 1; }, kWithin));
  auto releaser = std::async(std::launch::async, [&] {
    std::this_thread::sleep_for(50ms);  // stop() must be waiting meanwhile
    gate->release();
  });
  EXPECT_EQ(pool.stop(Clock::now() + kWithin), 0u);
  releaser.get();
  EXPECT_EQ(gate->left, 1);
  EXPECT_EQ(completed, 1) << "work that ended while stop() waited was not completed";
}

}  // namespace
}  // namespace protohost::host
