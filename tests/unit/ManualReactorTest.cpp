// The SDK test kit's clock (sdk/include/protohost/testing/ManualReactor.h) and
// MemoryTransport: plugin authors' tests are only as good as these.

#include <gtest/gtest.h>

#include <chrono>
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
