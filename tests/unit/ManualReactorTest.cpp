// The SDK test kit's clock (sdk/include/protohost/testing/ManualReactor.h) and
// MemoryTransport: plugin authors' tests are only as good as these.

#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "protohost/testing/ManualReactor.h"
#include "protohost/testing/MemoryTransport.h"

using protohost::TimerId;
using protohost::testing::ManualReactor;
using protohost::testing::MemoryTransport;
using namespace std::chrono_literals;

namespace {
std::chrono::milliseconds since(const ManualReactor& r, ManualReactor::Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(r.now() - start);
}
}  // namespace

TEST(ManualReactor, CallLaterFiresInDeadlineThenSchedulingOrder) {
  ManualReactor r;
  std::vector<std::string> order;
  r.callLater(30ms, [&] { order.push_back("c@30"); });
  r.callLater(10ms, [&] { order.push_back("a@10"); });
  r.callLater(20ms, [&] { order.push_back("b@20"); });
  r.callLater(10ms, [&] { order.push_back("a2@10"); });
  r.advance(30ms);
  EXPECT_EQ(order, (std::vector<std::string>{"a@10", "a2@10", "b@20", "c@30"}));
  EXPECT_EQ(r.pendingTimers(), 0u);
}

TEST(ManualReactor, NothingFiresBeforeItsDeadline) {
  ManualReactor r;
  int fired = 0;
  r.callLater(10ms, [&] { ++fired; });
  r.advance(9ms);
  EXPECT_EQ(fired, 0);
  r.advance(1ms);
  EXPECT_EQ(fired, 1);
  r.advance(100ms);
  EXPECT_EQ(fired, 1);
}

TEST(ManualReactor, ClockMovesOnlyWithAdvanceAndReadsTheDeadlineInsideACallback) {
  ManualReactor r;
  const auto start = r.now();
  std::vector<long> seen;
  r.callLater(10ms, [&] { seen.push_back(static_cast<long>(since(r, start).count())); });
  r.callLater(25ms, [&] { seen.push_back(static_cast<long>(since(r, start).count())); });
  EXPECT_EQ(since(r, start), 0ms);
  r.advance(40ms);
  EXPECT_EQ(seen, (std::vector<long>{10, 25}));
  EXPECT_EQ(since(r, start), 40ms);
}

TEST(ManualReactor, CallEveryFiresEachIntervalWithinOneAdvance) {
  ManualReactor r;
  const auto start = r.now();
  std::vector<long> at;
  r.callEvery(10ms, [&] { at.push_back(static_cast<long>(since(r, start).count())); });
  r.advance(35ms);
  EXPECT_EQ(at, (std::vector<long>{10, 20, 30}));
  r.advance(5ms);
  EXPECT_EQ(at, (std::vector<long>{10, 20, 30, 40}));
  EXPECT_EQ(r.pendingTimers(), 1u);
}

TEST(ManualReactor, CallEveryWithZeroIntervalMeansOneMillisecond) {
  ManualReactor r;
  int fired = 0;
  r.callEvery(0ms, [&] { ++fired; });
  r.advance(3ms);
  EXPECT_EQ(fired, 3);
}

TEST(ManualReactor, InterleavesRepeatingAndOneShotTimersByTime) {
  ManualReactor r;
  std::string order;
  r.callEvery(10ms, [&] { order += "E"; });
  r.callLater(15ms, [&] { order += "L"; });
  r.callLater(20ms, [&] { order += "l"; });  // same deadline as the 2nd tick, scheduled later
  r.advance(30ms);
  EXPECT_EQ(order, "ELElE");
}

TEST(ManualReactor, CancelReportsWhetherSomethingWasPending) {
  ManualReactor r;
  int fired = 0;
  TimerId a = r.callLater(10ms, [&] { ++fired; });
  TimerId b = r.callLater(10ms, [&] { fired += 10; });
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, b);
  EXPECT_TRUE(r.cancel(a));
  EXPECT_FALSE(r.cancel(a));       // twice
  EXPECT_FALSE(r.cancel(12345));   // unknown
  r.advance(10ms);
  EXPECT_EQ(fired, 10);
  EXPECT_FALSE(r.cancel(b));       // already ran
}

TEST(ManualReactor, CancelStopsARepeatingTimer) {
  ManualReactor r;
  int fired = 0;
  TimerId id = r.callEvery(10ms, [&] { ++fired; });
  r.advance(25ms);
  EXPECT_EQ(fired, 2);
  EXPECT_TRUE(r.cancel(id));
  r.advance(100ms);
  EXPECT_EQ(fired, 2);
  EXPECT_EQ(r.pendingTimers(), 0u);
}

TEST(ManualReactor, RepeatingTimerCancellingItselfRunsOnce) {
  ManualReactor r;
  int fired = 0;
  TimerId id = 0;
  bool cancelled = false;
  id = r.callEvery(10ms, [&] {
    ++fired;
    cancelled = r.cancel(id);
  });
  r.advance(100ms);
  EXPECT_EQ(fired, 1);
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(r.pendingTimers(), 0u);
}

TEST(ManualReactor, OneShotCancellingItselfFindsNothingPending) {
  ManualReactor r;
  TimerId id = 0;
  bool cancelled = true;
  id = r.callLater(10ms, [&] { cancelled = r.cancel(id); });
  r.advance(10ms);
  EXPECT_FALSE(cancelled);
}

TEST(ManualReactor, CallbackCancellingALaterTimerPreventsIt) {
  ManualReactor r;
  std::string order;
  TimerId later = 0;
  r.callLater(10ms, [&] {
    order += "a";
    r.cancel(later);
  });
  later = r.callLater(20ms, [&] { order += "b"; });
  r.advance(30ms);
  EXPECT_EQ(order, "a");
}

TEST(ManualReactor, TimerScheduledFromACallbackFiresWithinTheSameAdvanceWhenDue) {
  ManualReactor r;
  const auto start = r.now();
  std::vector<long> at;
  r.callLater(10ms, [&] {
    at.push_back(static_cast<long>(since(r, start).count()));
    r.callLater(10ms, [&] { at.push_back(static_cast<long>(since(r, start).count())); });
    r.callLater(50ms, [&] { at.push_back(-1); });
  });
  r.advance(30ms);
  EXPECT_EQ(at, (std::vector<long>{10, 20}));
  EXPECT_EQ(r.pendingTimers(), 1u);
}

TEST(ManualReactor, PostRunsInOrderOnRunPendingOrBeforeTimers) {
  ManualReactor r;
  std::string order;
  r.post([&] { order += "1"; });
  r.post([&] {
    order += "2";
    r.post([&] { order += "3"; });  // posted from a posted callback: same drain
  });
  EXPECT_EQ(order, "");
  r.runPending();
  EXPECT_EQ(order, "123");
  r.callLater(5ms, [&] {
    order += "T";
    r.post([&] { order += "p"; });  // runs right after the timer, before the next one
  });
  r.callLater(6ms, [&] { order += "U"; });
  r.post([&] { order += "0"; });
  r.advance(10ms);
  EXPECT_EQ(order, "1230TpU");
}

TEST(ManualReactor, AdvanceZeroRunsTimersDueNow) {
  ManualReactor r;
  int fired = 0;
  r.callLater(0ms, [&] { ++fired; });
  EXPECT_EQ(fired, 0);
  r.advance(0ms);
  EXPECT_EQ(fired, 1);
}

// ---- MemoryTransport ----

// The host's EventLoop lets a watch callback unwatch its own and other watches
// (EventLoop.cpp defers the destruction); the kit must too. It iterated its
// map while the callback erased from it: a use after free under ASan.
TEST(ManualReactor, AWatchCallbackMayUnwatchItselfAndAnotherWatch) {
  ManualReactor r;
  std::vector<std::string> calls;
  protohost::WatchId first, second, third;
  first = r.watchReadable(5, [&, name = std::string("first, a capture unwatching destroys")] {
    r.unwatch(first);
    r.unwatch(second);
    calls.push_back(name);  // after its own watch (and this closure's owner) is gone
  });
  second = r.watchReadable(5, [&] { calls.push_back("second"); });
  third = r.watchReadable(5, [&] { calls.push_back("third"); });
  r.watchReadable(6, [&] { calls.push_back("other fd"); });
  r.fireReadable(5);
  EXPECT_EQ(calls, (std::vector<std::string>{"first, a capture unwatching destroys", "third"}));
  EXPECT_EQ(r.watchCount(), 2u);
  EXPECT_FALSE(r.unwatch(first));
  r.fireReadable(5);
  EXPECT_EQ(calls.back(), "third");
  EXPECT_EQ(calls.size(), 3u);
}

TEST(ManualReactor, AWatchAddedByAWatchCallbackIsCalledFromTheNextFiring) {
  ManualReactor r;
  int added = 0;
  r.watchReadable(5, [&] { r.watchReadable(5, [&] { ++added; }); });
  r.fireReadable(5);
  EXPECT_EQ(added, 0);
  r.fireReadable(5);
  EXPECT_EQ(added, 1);
}

namespace {
class Recorder : public protohost::Protocol {
 public:
  void connectionMade() override { made = true; }
  void dataReceived(std::string_view data) override {
    got += std::string(data) + "|";
    if (pauseAfterEachChunk) transport().pauseReading();
  }
  void connectionLost(const protohost::DisconnectReason& reason) override { lost = reason.detail; }
  bool made = false;
  bool pauseAfterEachChunk = false;
  std::string got;
  std::string lost;
};
}  // namespace

TEST(MemoryTransport, RecordsWritesAndCloseState) {
  MemoryTransport t;
  Recorder p;
  t.connect(p);
  EXPECT_TRUE(p.made);
  EXPECT_EQ(&p.transport(), &t);
  t.feed(p, "abcde", 2);
  EXPECT_EQ(p.got, "ab|cd|e|");
  t.write("x");
  t.write("y");
  EXPECT_EQ(t.take(), "xy");
  EXPECT_EQ(t.value(), "");
  t.loseConnection();
  t.write("dropped");
  EXPECT_EQ(t.value(), "");
  EXPECT_TRUE(t.closed());
  EXPECT_FALSE(t.aborted());
  t.feed(p, "late");
  EXPECT_EQ(p.got, "ab|cd|e|");  // nothing delivered once closing
  t.disconnect(p, {protohost::DisconnectReason::Kind::ClosedLocally, "done"});
  EXPECT_EQ(p.lost, "done");
}

TEST(MemoryTransport, UsesAGivenReactor) {
  ManualReactor shared;
  MemoryTransport t(shared);
  EXPECT_EQ(&t.reactor(), &shared);
  MemoryTransport own;
  EXPECT_EQ(&own.reactor(), &own.manualReactor());
}

// The host does not read while reading is paused; feed() did, so a protocol
// was tested under other rules than it runs under.
TEST(MemoryTransport, FeedHoldsInputWhilePausedAndDeliversItInOrderAfterResume) {
  MemoryTransport t;
  Recorder p;
  t.connect(p);
  t.pauseReading();
  t.feed(p, "abcde", 2);
  EXPECT_EQ(p.got, "");
  EXPECT_EQ(t.heldBytes(), 5u);
  t.feed(p, "fg");  // more while paused: behind what is held
  EXPECT_TRUE(t.paused());
  t.resumeReading();
  EXPECT_EQ(p.got, "") << "delivered from inside resumeReading (the host never calls a hook from a Transport call)";
  t.manualReactor().runPending();
  EXPECT_EQ(p.got, "ab|cd|e|fg|");
  EXPECT_EQ(t.heldBytes(), 0u);
  t.feed(p, "h");
  EXPECT_EQ(p.got, "ab|cd|e|fg|h|");
}

TEST(MemoryTransport, APauseFromDataReceivedStopsTheFeedAtThatChunk) {
  MemoryTransport t;
  Recorder p;
  p.pauseAfterEachChunk = true;
  t.connect(p);
  t.feed(p, "abcdef", 2);
  EXPECT_EQ(p.got, "ab|");
  EXPECT_EQ(t.heldBytes(), 4u);
  t.resumeReading();
  t.feed(p, "gh", 2);  // resumed but not yet run: the held input still comes first
  EXPECT_EQ(p.got, "ab|cd|");
  for (int i = 0; i < 3; ++i) {
    t.resumeReading();
    t.manualReactor().runPending();
  }
  EXPECT_EQ(p.got, "ab|cd|ef|gh|");
  t.resumeReading();
  t.loseConnection();
  t.feed(p, "late");
  t.manualReactor().runPending();
  EXPECT_EQ(p.got, "ab|cd|ef|gh|");  // nothing once closing
}

TEST(MemoryTransport, WhenReadingResumedFiresLaterAndOnlyWhileNotPaused) {
  MemoryTransport t;
  Recorder p;
  t.connect(p);
  int fired = 0;
  t.pauseReading();
  t.whenReadingResumed([&] { ++fired; });
  t.manualReactor().runPending();
  EXPECT_EQ(fired, 0);
  EXPECT_TRUE(t.resumeRequested());
  t.resumeReading();
  EXPECT_EQ(fired, 0);
  t.manualReactor().runPending();
  EXPECT_EQ(fired, 1);
  t.whenReadingResumed([&] { fired += 10; });  // not paused: soon, never from inside the call
  EXPECT_EQ(fired, 1);
  t.manualReactor().runPending();
  EXPECT_EQ(fired, 11);
  EXPECT_FALSE(t.resumeRequested());
}

// The host also pauses reading while a connection's output is past
// pause_reading_above, until it is down to half; the kit paused only on
// pauseReading(), so protocols were tested under other rules.
TEST(MemoryTransport, APauseThresholdPausesWhilePendingIsAboveItAndResumesAtTheLowMark) {
  MemoryTransport t;
  Recorder p;
  t.connect(p);
  t.setPauseThreshold(100, 50);
  int resumed = 0;
  t.setPendingBytes(100);
  EXPECT_FALSE(t.readingPaused()) << "at the threshold: not above it";
  t.setPendingBytes(101);
  EXPECT_TRUE(t.readingPaused());
  t.whenReadingResumed([&] { ++resumed; });
  t.feed(p, "ab");
  t.manualReactor().runPending();
  EXPECT_EQ(p.got, "");
  EXPECT_EQ(t.heldBytes(), 2u);
  t.setPendingBytes(51);
  EXPECT_TRUE(t.readingPaused()) << "above the low mark: still paused";
  t.manualReactor().runPending();
  EXPECT_EQ(resumed, 0);
  t.setPendingBytes(50);
  EXPECT_FALSE(t.readingPaused());
  EXPECT_EQ(resumed, 0) << "never from inside the call";
  t.manualReactor().runPending();
  EXPECT_EQ(resumed, 1);
  EXPECT_EQ(p.got, "ab|");
  t.pauseReading();
  t.setPendingBytes(0);
  EXPECT_TRUE(t.readingPaused()) << "the protocol's own pause stays";
}

// As in the host: a whenReadingResumed request runs before more input (or
// the EOF) is handed over.
TEST(MemoryTransport, AResumeRequestRunsBeforeHeldInputAndTheEof) {
  MemoryTransport t;
  struct Ending : Recorder {
    void readEnded() override { got += "EOF|"; }
  } p;
  t.connect(p);
  t.pauseReading();
  t.feed(p, "ab");
  t.feedEof(p);
  t.whenReadingResumed([&] { p.got += "resumed|"; });
  t.resumeReading();
  t.manualReactor().runPending();
  EXPECT_EQ(p.got, "resumed|ab|EOF|");
  t.whenReadingResumed([&] { p.got += "again|"; });
  t.feed(p, "c");
  EXPECT_EQ(p.got, "resumed|ab|EOF|") << "held while the request waits";
  t.manualReactor().runPending();
  EXPECT_EQ(p.got, "resumed|ab|EOF|again|c|");
}

// ---- SDK 1.3: shutdownWrite, writeSequence, handle ----

TEST(MemoryTransport, ShutdownWriteIsRecordedAndLaterWritesAreIgnored) {
  MemoryTransport t;
  Recorder p;
  t.connect(p);
  t.write("before");
  EXPECT_FALSE(t.writeShutDown());
  t.shutdownWrite();
  t.write("after");
  const std::string_view pieces[] = {"x", "y"};
  t.writeSequence(pieces);
  EXPECT_TRUE(t.writeShutDown());
  EXPECT_EQ(t.value(), "before");
  EXPECT_FALSE(t.closed()) << "a half-close is not a close";
  t.feed(p, "still read");
  EXPECT_EQ(p.got, "still read|");
}

TEST(MemoryTransport, WriteSequenceWritesThePiecesInOrderAsOneWrite) {
  MemoryTransport t;
  Recorder p;
  t.connect(p);
  const std::string_view pieces[] = {"GET ", "", "/x", "\r\n"};
  t.writeSequence(pieces);
  t.write("!");
  EXPECT_EQ(t.value(), "GET /x\r\n!");
  EXPECT_EQ(t.writeCount(), 2u);
  t.loseConnection();
  t.writeSequence(pieces);
  EXPECT_EQ(t.value(), "GET /x\r\n!");
}

TEST(MemoryTransport, AHandlePostsToTheReactorUntilConnectionLost) {
  ManualReactor r;
  MemoryTransport t(r);
  Recorder p;
  t.connect(p);
  protohost::ConnectionHandle h = p.transport().handle();
  protohost::ConnectionHandle copy = h;
  EXPECT_TRUE(h.alive());
  EXPECT_TRUE(h.post([](protohost::Transport& tr) { tr.write("first"); }));
  EXPECT_EQ(t.value(), "") << "runs from the reactor, not inside post";
  r.runPending();
  EXPECT_EQ(t.value(), "first");
  EXPECT_TRUE(copy.post([](protohost::Transport& tr) { tr.write("queued before the end"); }));
  t.disconnect(p);
  r.runPending();
  EXPECT_EQ(t.value(), "first") << "a queued call does not run once the connection is gone";
  EXPECT_FALSE(h.alive());
  EXPECT_FALSE(copy.post([](protohost::Transport&) { ADD_FAILURE() << "ran after connectionLost"; }));
  EXPECT_FALSE(protohost::ConnectionHandle().post([](protohost::Transport&) {}));
}

TEST(MemoryTransport, AHandleOutlivingItsTransportReportsItGone) {
  ManualReactor r;
  protohost::ConnectionHandle h;
  {
    MemoryTransport t(r);
    Recorder p;
    t.connect(p);
    h = t.handle();
    EXPECT_TRUE(h.post([](protohost::Transport&) { ADD_FAILURE() << "ran after the transport died"; }));
  }
  r.runPending();
  EXPECT_FALSE(h.alive());
  EXPECT_FALSE(h.post([](protohost::Transport&) {}));
}

// ---- SDK 1.3: watchFd / modifyWatch ----

TEST(ManualReactor, WatchFdFiresOnlyForWhatItsInterestAsks) {
  ManualReactor r;
  std::vector<std::string> seen;
  auto record = [&](protohost::FdEvents e) {
    seen.push_back(std::string(e.readable ? "r" : "") + (e.writable ? "w" : "") + (e.error ? "e" : ""));
  };
  protohost::WatchId id = r.watchFd(7, protohost::FdInterest::Read, record);
  ASSERT_TRUE(id);
  r.fire(7, {true, true, false});
  r.fire(7, {false, true, false});  // not asked for: not called
  EXPECT_TRUE(r.modifyWatch(id, protohost::FdInterest::Write));
  EXPECT_EQ(r.interestOf(id), protohost::FdInterest::Write);
  r.fire(7, {true, true, false});
  EXPECT_TRUE(r.modifyWatch(id, protohost::FdInterest::None));
  r.fire(7, {true, true, false});
  r.fire(7, {false, false, true});  // errors are reported whatever the interest, as epoll does
  EXPECT_TRUE(r.modifyWatch(id, protohost::FdInterest::ReadWrite));
  r.fire(7, {true, true, false});
  r.fire(8, {true, true, false});
  EXPECT_EQ(seen, (std::vector<std::string>{"r", "w", "e", "rw"}));
  EXPECT_TRUE(r.unwatch(id));
  EXPECT_FALSE(r.modifyWatch(id, protohost::FdInterest::Read));
  EXPECT_FALSE(r.interestOf(id).has_value());
}

TEST(ManualReactor, OneWatchFdPerFdAndModifyWatchWorksOnWatchReadable) {
  ManualReactor r;
  auto ignore = [](protohost::FdEvents) {};
  protohost::WatchId a = r.watchFd(3, protohost::FdInterest::Read, ignore);
  EXPECT_TRUE(a);
  EXPECT_FALSE(r.watchFd(3, protohost::FdInterest::Write, ignore));
  EXPECT_FALSE(r.watchReadable(3, [] {}));
  EXPECT_FALSE(r.watchFd(-1, protohost::FdInterest::Read, ignore));
  int readable = 0;
  protohost::WatchId b = r.watchReadable(4, [&] { ++readable; });
  EXPECT_FALSE(r.watchFd(4, protohost::FdInterest::Read, ignore));
  r.fireReadable(4);
  EXPECT_TRUE(r.modifyWatch(b, protohost::FdInterest::None));
  r.fireReadable(4);
  EXPECT_EQ(readable, 1);
}

// ---- SDK 1.3: deterministic deferToThread ----

TEST(ManualReactor, DeferredWorkRunsOnlyWhenTheTestSaysThenItsDone) {
  ManualReactor r;
  std::string order;
  EXPECT_EQ(r.deferToThread([&] { order += "w1 "; }, [&](std::exception_ptr e) { order += e ? "E1 " : "d1 "; }),
            protohost::WorkStatus::Queued);
  r.deferToThread([&] { throw std::runtime_error("boom"); },
                  [&](std::exception_ptr e) {
                    try {
                      std::rethrow_exception(e);
                    } catch (const std::runtime_error& err) {
                      order += std::string(err.what()) + " ";
                    }
                  });
  r.runPending();
  EXPECT_EQ(order, "");
  EXPECT_EQ(r.queuedWork(), 2u);
  EXPECT_EQ(r.runWork(1), 1u);
  EXPECT_EQ(order, "w1 d1 ");
  EXPECT_EQ(r.runWork(), 1u);
  EXPECT_EQ(order, "w1 d1 boom ");
  EXPECT_EQ(r.runWork(), 0u);
}

TEST(ManualReactor, AFullWorkQueueAndAStoppedPoolRefuseAtOnce) {
  ManualReactor r;
  r.setWorkQueueLimit(1);
  int runs = 0, dones = 0;
  EXPECT_EQ(r.deferToThread([&] { ++runs; }, [&](std::exception_ptr) { ++dones; }), protohost::WorkStatus::Queued);
  EXPECT_EQ(r.deferToThread([&] { ++runs; }, [&](std::exception_ptr) { ++dones; }), protohost::WorkStatus::QueueFull);
  r.runWork();
  EXPECT_EQ(r.deferToThread([&] { ++runs; }, [&](std::exception_ptr) { ++dones; }), protohost::WorkStatus::Queued);
  r.stopWork();
  EXPECT_EQ(r.queuedWork(), 0u) << "queued work is dropped";
  EXPECT_EQ(r.deferToThread([&] { ++runs; }, nullptr), protohost::WorkStatus::ShuttingDown);
  r.runWork();
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(dones, 1);
}
