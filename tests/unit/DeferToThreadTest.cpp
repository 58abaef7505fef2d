// TrackedReactor::deferToThread (host/src/reactor/TrackedReactor.h) on a real
// EventLoop and WorkerPool: the work runs on a worker, done on the loop's
// thread through the owner's guard with the work's exception, and not at all
// once the owner ended; a full queue or a loop without a pool is refused at
// once; the queued work keeps the owner's code reference alive.

#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "WaitUntil.h"
#include "reactor/TrackedReactor.h"
#include "reactor/WorkerPool.h"

namespace protohost::host {
namespace {

using namespace std::chrono_literals;
using testsupport::waitUntil;

constexpr auto kWithin = 10s;  // generous: only a broken loop or pool comes near it

std::string threadName() {
  char buf[16] = {};
  pthread_getname_np(pthread_self(), buf, sizeof buf);
  return buf;
}

class DeferToThreadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    loop.setWorkerPool(&pool);
    loop.startThread();
  }
  void TearDown() override {
    loop.runAndWait([&] { reactor.cancelAll(); });
    pool.stop(std::chrono::steady_clock::now() + kWithin);
    loop.stopAndJoin();
    loop.clearCallbacks();
  }
  // Counts the callbacks that went through it, and keeps their exceptions from the loop.
  TrackedReactor::Guard countingGuard() {
    return [this](Reactor::Callback fn) -> Reactor::Callback {
      return [this, fn = std::move(fn)] {
        ++guarded;
        try {
          fn();
        } catch (const std::exception&) {
          ++guardCaught;
        }
      };
    };
  }
  // Runs @p fn on the loop and returns its result.
  template <class Fn>
  auto onLoop(Fn fn) {
    std::optional<decltype(fn())> result;
    EXPECT_TRUE(loop.runAndWait([&] { result = fn(); }));
    return *result;
  }
  // Waits until the pool finished @p n jobs and the loop ran what they posted.
  void settle(std::uint64_t n) {
    ASSERT_TRUE(waitUntil([&] { return pool.figures().completed >= n; }, kWithin));
    ASSERT_TRUE(loop.runAndWait([] {}));  // the completions were posted before: they ran
  }

  EventLoop loop{0, "test-loop"};
  WorkerPool pool{1, 2};
  std::atomic<int> guarded{0};
  std::atomic<int> guardCaught{0};
  std::shared_ptr<int> code = std::make_shared<int>(7);  // stands in for the ListenerRuntime
  TrackedReactor reactor{loop, countingGuard(), code};
};

TEST_F(DeferToThreadTest, WorkRunsOnAWorkerAndDoneOnTheLoopThroughTheGuard) {
  std::promise<std::string> workThread;
  std::promise<std::pair<std::thread::id, bool>> doneCall;  // thread, error was null
  std::thread::id loopThread;
  EXPECT_EQ(onLoop([&] {
              loopThread = std::this_thread::get_id();
              return reactor.deferToThread([&] { workThread.set_value(threadName()); },
                                           [&](std::exception_ptr e) {
                                             doneCall.set_value({std::this_thread::get_id(), e == nullptr});
                                           });
            }),
            WorkStatus::Queued);
  auto work = workThread.get_future();
  auto done = doneCall.get_future();
  ASSERT_EQ(done.wait_for(kWithin), std::future_status::ready);
  EXPECT_EQ(work.get().rfind("ph-worker-", 0), 0u);
  const auto [thread, noError] = done.get();
  EXPECT_EQ(thread, loopThread) << "done ran off the loop's thread";
  EXPECT_TRUE(noError);
  EXPECT_EQ(guarded, 1) << "done did not go through the owner's guard";
}

TEST_F(DeferToThreadTest, TheWorksExceptionIsPassedToDoneAndDonesOwnIsCaughtByTheGuard) {
  std::promise<std::string> what;
  ASSERT_EQ(onLoop([&] {
              return reactor.deferToThread([] { throw std::runtime_error("disk on fire"); },
                                           [&](std::exception_ptr e) {
                                             try {
                                               if (e) std::rethrow_exception(e);
                                               what.set_value("(no exception)");
                                             } catch (const std::exception& x) {
                                               what.set_value(x.what());
                                             }
                                             throw std::logic_error("done throws too");
                                           });
            }),
            WorkStatus::Queued);
  auto got = what.get_future();
  ASSERT_EQ(got.wait_for(kWithin), std::future_status::ready);
  EXPECT_EQ(got.get(), "disk on fire");
  settle(1);
  EXPECT_EQ(guardCaught, 1) << "done's exception did not stay in the owner's boundary";
  // The worker survived the throw: the pool still runs work.
  std::promise<void> again;
  ASSERT_EQ(onLoop([&] { return reactor.deferToThread([] {}, [&](std::exception_ptr) { again.set_value(); }); }),
            WorkStatus::Queued);
  EXPECT_EQ(again.get_future().wait_for(kWithin), std::future_status::ready);
}

TEST_F(DeferToThreadTest, DoneIsDroppedOnceTheOwnerEndedAndNothingNewIsQueued) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> started{false}, workEnded{false}, doneRan{false};
  ASSERT_EQ(onLoop([&] {
              return reactor.deferToThread(
                  [&, released] {
                    started = true;
                    released.wait();
                    workEnded = true;
                  },
                  [&](std::exception_ptr) { doneRan = true; });
            }),
            WorkStatus::Queued);
  ASSERT_TRUE(waitUntil([&] { return started.load(); }, kWithin));
  ASSERT_TRUE(loop.runAndWait([&] { reactor.cancelAll(); }));  // the connection closed meanwhile
  release.set_value();
  settle(1);
  EXPECT_TRUE(workEnded);
  EXPECT_FALSE(doneRan) << "done ran after its owner ended";
  EXPECT_EQ(guarded, 0);
  EXPECT_EQ(onLoop([&] { return reactor.deferToThread([] {}, [](std::exception_ptr) {}); }), WorkStatus::ShuttingDown);
}

TEST_F(DeferToThreadTest, AFullQueueIsRefusedAtOnceAndNeitherFunctionRuns) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> started{false};
  std::atomic<int> done{0};
  auto refusedRan = std::make_shared<std::atomic<int>>(0);
  ASSERT_EQ(onLoop([&] {
              return reactor.deferToThread([&, released] {
                started = true;
                released.wait();
              },
                                           [&](std::exception_ptr) { ++done; });
            }),
            WorkStatus::Queued);
  ASSERT_TRUE(waitUntil([&] { return started.load(); }, kWithin));
  // Queue of 2: two wait, the third is refused, at once, on the loop's thread.
  std::vector<WorkStatus> got;
  std::chrono::steady_clock::duration took{};
  ASSERT_TRUE(loop.runAndWait([&] {
    for (int i = 0; i < 3; ++i) {
      const auto before = std::chrono::steady_clock::now();
      got.push_back(reactor.deferToThread([refusedRan, i] { if (i == 2) ++*refusedRan; },
                                          [&, refusedRan, i](std::exception_ptr) {
                                            if (i == 2) ++*refusedRan;
                                            ++done;
                                          }));
      took = std::max(took, std::chrono::steady_clock::now() - before);
    }
  }));
  EXPECT_EQ(got, (std::vector<WorkStatus>{WorkStatus::Queued, WorkStatus::Queued, WorkStatus::QueueFull}));
  EXPECT_LT(took, 1s) << "deferToThread blocked the loop";
  EXPECT_EQ(pool.figures().rejected, 1u);
  release.set_value();
  settle(3);
  EXPECT_EQ(done, 3);
  EXPECT_EQ(*refusedRan, 0) << "refused work ran";
  EXPECT_EQ(refusedRan.use_count(), 1) << "refused work was kept";
}

TEST_F(DeferToThreadTest, TheWorkKeepsTheOwnersCodeReferenceUntilDoneRan) {
  std::weak_ptr<int> weak = code;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> started{false}, aliveInWork{false}, aliveInDone{false};
  ASSERT_EQ(onLoop([&] {
              return reactor.deferToThread(
                  [&, released] {
                    started = true;
                    released.wait();
                    aliveInWork = !weak.expired();
                  },
                  [&](std::exception_ptr) { aliveInDone = !weak.expired(); });
            }),
            WorkStatus::Queued);
  ASSERT_TRUE(waitUntil([&] { return started.load(); }, kWithin));
  code.reset();  // the host lets go of the runtime (a reload retired it) while the work runs
  release.set_value();
  settle(1);
  EXPECT_TRUE(aliveInWork) << "the plugin's code reference went while its work ran";
  EXPECT_TRUE(aliveInDone);
  EXPECT_TRUE(waitUntil([&] { return weak.expired(); }, kWithin)) << "the work kept the reference after done";
}

TEST(DeferToThreadWithoutPool, ALoopWithoutAPoolRefusesWithShuttingDown) {
  // [host] worker_threads = 0: the Server makes no pool.
  EventLoop loop{0, "test-loop"};
  std::atomic<int> ran{0};
  TrackedReactor reactor{loop, [](Reactor::Callback fn) { return fn; }};
  EXPECT_EQ(reactor.deferToThread([&] { ++ran; }, [&](std::exception_ptr) { ++ran; }), WorkStatus::ShuttingDown);
  EXPECT_EQ(ran, 0);
}

}  // namespace
}  // namespace protohost::host
