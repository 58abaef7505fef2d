#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <thread>

#include "FibTestSupport.h"
#include "Sequence.h"
#include "SequenceStore.h"
#include "StateFormat.h"
#include "protohost/Factory.h"

using namespace protohost::plugins::fibonacci;
using Kind = Sequence::Answer::Kind;
using fibtest::readFile;
using fibtest::TempDir;

namespace {

class SequenceTest : public ::testing::Test {
 protected:
  std::unique_ptr<Sequence> make(SequenceOptions options, std::shared_ptr<FileOps> ops = std::make_shared<FileOps>()) {
    return std::make_unique<Sequence>(std::make_unique<SequenceStore>(path, logger, std::move(ops)), options, logger,
                                      [this] { return now(); });
  }
  /// Opened: the first block is durable (open() reserves it).
  std::unique_ptr<Sequence> opened(SequenceOptions options, std::shared_ptr<FileOps> ops = std::make_shared<FileOps>()) {
    auto seq = make(options, std::move(ops));
    seq->open();
    return seq;
  }
  std::uint64_t onDisk() { return decodeState(readFile(path)); }
  /// @p n answers that must all be numbers; returns their indexes.
  std::vector<std::uint64_t> take(Sequence& seq, std::size_t n) {
    std::vector<std::uint64_t> out;
    for (std::size_t i = 0; i < n; ++i) {
      auto a = seq.next();
      EXPECT_EQ(a.kind, Kind::Number) << a.text;
      out.push_back(a.index);
    }
    return out;
  }

  TempDir dir;
  std::string path = dir.file("fib.state");
  fibtest::LockedLogger logger;
  fibtest::ManualClock now;
};

}  // namespace

TEST_F(SequenceTest, FirstAnswersAreTheArticles) {
  auto seq = make({});
  seq->open();
  for (const char* expected : {"2", "3", "5", "8", "13", "21"}) {
    auto a = seq->next();
    EXPECT_EQ(a.kind, Kind::Number);
    EXPECT_EQ(a.text, expected);
  }
  EXPECT_TRUE(seq->ready());
}

TEST_F(SequenceTest, OneDurableWritePerBlock) {
  auto ops = std::make_shared<fibtest::FailingOps>();
  auto seq = opened({.reserveBlock = 100}, ops);  // the fresh file, then the first block [1, 101)
  EXPECT_EQ(ops->calls("fsync"), 2);
  EXPECT_EQ(onDisk(), 101u);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(seq->next().kind, Kind::Number);
  seq->awaitIdle();
  // Each block was reserved when half of the previous one was left (at answers 51, 151, ..., 951).
  EXPECT_EQ(ops->calls("fsync"), 2 + 10);
  // After the fresh file (one rename), every write is one pwrite and one fdatasync, in place.
  EXPECT_EQ(ops->calls("fsync-dir"), 1);
  EXPECT_EQ(ops->calls("rename"), 1);
  EXPECT_EQ(ops->calls("fdatasync"), 1 + 10);
  EXPECT_EQ(ops->calls("pwrite"), 1 + 10);
  EXPECT_EQ(onDisk(), 1101u);
  EXPECT_EQ(seq->durableCeiling(), 1101u);
  take(*seq, 50);  // answer 1050 leaves 50: the next block
  seq->awaitIdle();
  EXPECT_EQ(ops->calls("fsync"), 2 + 11);
  EXPECT_EQ(onDisk(), 1201u);
}

TEST_F(SequenceTest, ThousandthAnswerIsPythonsAndAllMatchTheReference) {
  const auto reference = fibtest::referenceAnswers(1000);
  auto seq = make({.reserveBlock = 64});
  seq->open();
  for (std::size_t k = 1; k <= 1000; ++k) {
    auto a = seq->next();
    ASSERT_EQ(a.index, k);
    ASSERT_EQ(a.text, reference[k - 1]) << "answer " << k;
  }
  EXPECT_EQ(reference[999], fibtest::kF1002);
}

TEST_F(SequenceTest, CapAnswersAnErrorNeverAWrongNumber) {
  auto seq = make({.reserveBlock = 3, .maxIndex = 5});
  seq->open();
  for (const char* expected : {"2", "3", "5", "8", "13"}) EXPECT_EQ(seq->next().text, expected);
  for (int i = 0; i < 3; ++i) {
    auto a = seq->next();
    EXPECT_EQ(a.kind, Kind::Exhausted);
    EXPECT_EQ(a.text, "ERR exhausted: max_index 5 reached");
  }
  EXPECT_FALSE(seq->ready());
  EXPECT_EQ(onDisk(), 6u);
}

TEST_F(SequenceTest, RestartContinuesWithoutRepeats) {
  std::string last;
  {
    auto seq = make({.reserveBlock = 10});
    seq->open();
    for (int i = 0; i < 4; ++i) last = seq->next().text;  // 2 3 5 8
    // kill -9: no close()
  }
  {
    auto seq = make({.reserveBlock = 10});
    seq->open();
    auto a = seq->next();
    EXPECT_EQ(a.index, 11u);  // the persisted ceiling: a gap, no repeat
    EXPECT_EQ(a.text, fibtest::referenceAnswers(11)[10]);
    seq->next();  // answer 12
    seq->close();  // clean stop: exact
  }
  EXPECT_EQ(onDisk(), 13u);
  auto seq = make({.reserveBlock = 10});
  seq->open();
  EXPECT_EQ(seq->next().index, 13u);
}

TEST_F(SequenceTest, CleanStopPersistsTheExactNextIndex) {
  {
    auto seq = make({});
    seq->open();
    for (int i = 0; i < 5; ++i) seq->next();
    seq->close();
    EXPECT_EQ(seq->next().kind, Kind::Unavailable);
  }
  EXPECT_EQ(onDisk(), 6u);
  auto seq = make({});
  seq->open();
  EXPECT_EQ(seq->next().text, "21");  // answer 6, no gap
}

TEST_F(SequenceTest, WriteFailureFailsClosedAtTheDurableCeiling) {
  auto ops = std::make_shared<fibtest::FailingOps>();
  auto seq = opened({.reserveBlock = 4}, ops);  // [1, 5) durable
  ops->fail("write", ENOSPC);
  // Answer 2 leaves half a block: the reservation ahead fails, the durable block is still served.
  for (const char* expected : {"2", "3", "5", "8"}) EXPECT_EQ(seq->next().text, expected);
  for (int i = 0; i < 5; ++i) {
    auto a = seq->next();
    EXPECT_EQ(a.kind, Kind::Unavailable);
    EXPECT_EQ(a.text, "ERR unavailable: cannot persist the sequence state (No space left on device)");
  }
  EXPECT_FALSE(seq->ready());
  EXPECT_EQ(onDisk(), 5u);
  EXPECT_EQ(seq->durableCeiling(), 5u);
  EXPECT_EQ(ops->calls("write"), 2 + 1);  // one attempt: the others wait for the retry interval
  EXPECT_EQ(logger.count(protohost::LogLevel::Error), 1u);

  // Still failing after the interval: one more attempt, still no number.
  now += std::chrono::milliseconds(1000);
  EXPECT_EQ(seq->next().kind, Kind::Unavailable);
  EXPECT_EQ(ops->calls("write"), 2 + 2);

  // The disk has room again: the next attempt (fresh temp file) succeeds and serving resumes in order.
  ops->heal();
  EXPECT_EQ(seq->next().kind, Kind::Unavailable);  // before the retry time
  now += std::chrono::milliseconds(1000);
  auto a = seq->next();
  EXPECT_EQ(a.kind, Kind::Number);
  EXPECT_EQ(a.index, 5u);
  EXPECT_EQ(a.text, "13");
  EXPECT_TRUE(seq->ready());
  EXPECT_EQ(onDisk(), 9u);
}

TEST_F(SequenceTest, FsyncErrorIsNeverRetriedOnTheSameFile) {
  auto ops = std::make_shared<fibtest::FailingOps>();
  auto seq = opened({.reserveBlock = 4}, ops);
  ops->fail("fsync", EIO, 1);
  for (const char* expected : {"2", "3", "5", "8"}) EXPECT_EQ(seq->next().text, expected);  // [5, 9) ahead fails
  EXPECT_EQ(seq->next().text, "ERR unavailable: cannot persist the sequence state (Input/output error)");
  int creates = ops->calls("create");
  now += std::chrono::seconds(1);
  EXPECT_EQ(seq->next().text, "13");  // answer 5: [5, 9) written now, from a fresh temp file
  EXPECT_EQ(ops->calls("create"), creates + 1);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST_F(SequenceTest, FailureLogsAreRateLimited) {
  fibtest::writeFile(path, encodeStateV1(1));  // open() itself writes nothing
  auto ops = std::make_shared<fibtest::FailingOps>();
  ops->fail("fsync-dir", EROFS);
  auto seq = opened({.reserveBlock = 1}, ops);  // the first block fails at once
  for (int i = 0; i < 60; ++i) {
    EXPECT_EQ(seq->next().kind, Kind::Unavailable);
    now += std::chrono::milliseconds(1000);  // every request is a retry
  }
  EXPECT_EQ(ops->calls("fsync-dir"), 1 + 60);
  const std::size_t errors = logger.count(protohost::LogLevel::Error);
  EXPECT_GE(errors, 5u);
  EXPECT_LE(errors, 7u);  // one per 10 s, not one per failure
  ops->heal();
  EXPECT_EQ(seq->next().kind, Kind::Number);
}

TEST_F(SequenceTest, FreshStartThatCannotWriteServesNothing) {
  auto ops = std::make_shared<fibtest::FailingOps>();
  ops->fail("create", EROFS);
  auto seq = make({}, ops);
  seq->open();
  EXPECT_FALSE(seq->ready());
  for (int i = 0; i < 3; ++i) {
    auto a = seq->next();
    EXPECT_EQ(a.kind, Kind::Unavailable);
    EXPECT_EQ(a.text, "ERR unavailable: cannot persist the sequence state (Read-only file system)");
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  ops->heal();
  now += std::chrono::seconds(1);
  EXPECT_EQ(seq->next().text, "2");
  EXPECT_TRUE(seq->ready());
  seq->close();
}

TEST_F(SequenceTest, CorruptStateThrowsStateError) {
  fibtest::writeFile(path, "protohost-fibonacci v1 next=12");
  auto seq = make({});
  EXPECT_THROW(seq->open(), protohost::StateError);
}

TEST_F(SequenceTest, FourThreadsNeverGetTheSameAnswer) {
  constexpr std::size_t kThreads = 4, kEach = 2500;
  const auto reference = fibtest::referenceAnswers(kThreads * kEach);
  auto seq = make({.reserveBlock = 37});
  seq->open();
  std::vector<std::vector<Sequence::Answer>> got(kThreads);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (std::size_t i = 0; i < kEach; ++i) got[t].push_back(seq->next());
    });
  for (auto& th : threads) th.join();
  std::set<std::uint64_t> indexes;
  for (const auto& answers : got) {
    std::uint64_t previous = 0;
    for (const auto& a : answers) {
      ASSERT_EQ(a.kind, Kind::Number);
      ASSERT_TRUE(indexes.insert(a.index).second) << "answer " << a.index << " handed out twice";
      ASSERT_EQ(a.text, reference[a.index - 1]);
      ASSERT_GT(a.index, previous);  // each thread sees the sequence in order
      previous = a.index;
    }
  }
  EXPECT_EQ(indexes.size(), kThreads * kEach);
  EXPECT_EQ(*indexes.begin(), 1u);
  EXPECT_EQ(*indexes.rbegin(), kThreads * kEach);
}

TEST_F(SequenceTest, ResumesAtAnyIndexByFastDoubling) {
  fibtest::writeFile(path, encodeStateV1(93));
  auto seq = make({});
  seq->open();
  auto a = seq->next();
  EXPECT_EQ(a.index, 93u);
  EXPECT_EQ(a.text, "31940434634990099905");  // F(95) > 2^64
  EXPECT_EQ(seq->next().text, "51680708854858323072");  // F(96)
}

// A config reload: the new factory's sequence and the old one's serve at the same time from one file.
TEST_F(SequenceTest, TwoSequencesOnOneFileNeverRepeatEvenConcurrently) {
  auto oldSeq = make({.reserveBlock = 7});
  oldSeq->open();
  for (int i = 0; i < 3; ++i) oldSeq->next();
  auto newSeq = make({.reserveBlock = 7});
  newSeq->open();
  std::vector<Sequence::Answer> a, b;
  std::thread ta([&] {
    for (int i = 0; i < 3000; ++i) a.push_back(oldSeq->next());
  });
  std::thread tb([&] {
    for (int i = 0; i < 3000; ++i) b.push_back(newSeq->next());
  });
  ta.join();
  tb.join();
  std::set<std::uint64_t> seen = {1, 2, 3};
  std::uint64_t highest = 3;
  for (const auto* list : {&a, &b})
    for (const auto& x : *list) {
      ASSERT_EQ(x.kind, Kind::Number);
      ASSERT_TRUE(seen.insert(x.index).second) << "answer " << x.index << " handed out twice";
      highest = std::max(highest, x.index);
    }
  oldSeq->close();  // the new one still runs: the file is not lowered
  EXPECT_GT(onDisk(), highest);
  newSeq->close();
  EXPECT_GT(onDisk(), highest);
  auto restarted = make({.reserveBlock = 7});
  restarted->open();
  EXPECT_GT(restarted->next().index, highest);
  // "advanced by another user" is normal here: logged once at info, then at debug.
  std::size_t infoAdvanced = 0;
  for (const auto& line : logger.lines)
    if (line.level == protohost::LogLevel::Info && line.text.find("advanced by another user") != std::string::npos &&
        line.text.find("continuing") != std::string::npos)
      ++infoAdvanced;
  EXPECT_LE(infoAdvanced, 2u);
}

// ---------------------------------------------------------------- reserve-ahead

// The next block is made durable by writeAhead() on another thread (a host
// worker) while the current one is still served: draw() never waits for that write.
TEST_F(SequenceTest, ReservesTheNextBlockWhileTheCurrentOneIsServed) {
  auto ops = std::make_shared<fibtest::FailingOps>();
  auto seq = opened({.reserveBlock = 100}, ops);  // [1, 101)
  ops->pause("fdatasync");                        // the next write stops before it is durable
  for (std::uint64_t k = 1; k <= 49; ++k) {
    auto d = seq->draw();
    ASSERT_EQ(d.answer.kind, Kind::Number);
    ASSERT_EQ(d.answer.index, k);
    ASSERT_FALSE(d.writeAhead) << "51 answers left at answer " << k;
  }
  auto fiftieth = seq->draw();  // 50 left: the next block is asked for
  ASSERT_TRUE(fiftieth.writeAhead);
  std::thread worker([&] {
    seq->writeAhead();
    seq->aheadFinished();
  });
  ops->waitPaused();  // ... and is being written, on the worker
  EXPECT_EQ(ops->calls("fdatasync"), 2);
  // The rest of the durable block is served meanwhile, on this thread, without asking again.
  for (std::uint64_t k = 51; k <= 100; ++k) {
    auto d = seq->draw();
    ASSERT_EQ(d.answer.kind, Kind::Number);
    ASSERT_EQ(d.answer.index, k);
    ASSERT_FALSE(d.writeAhead);
  }
  EXPECT_EQ(seq->durableCeiling(), 101u);  // the file may show 201 already: written, not yet durable
  EXPECT_EQ(ops->completed("fdatasync"), 1);
  ops->resume();
  worker.join();
  EXPECT_EQ(seq->durableCeiling(), 201u);  // contiguous: no gap
  EXPECT_EQ(onDisk(), 201u);
  EXPECT_EQ(seq->next().index, 101u);
  EXPECT_EQ(ops->calls("fdatasync"), 2);
}

// A request at the durable ceiling while the next block is still being written
// gets a promise; its settle() waits for that write instead of writing again.
TEST_F(SequenceTest, ARequestAtTheCeilingWaitsForTheWriteInFlight) {
  auto ops = std::make_shared<fibtest::FailingOps>();
  auto seq = opened({.reserveBlock = 4}, ops);  // [1, 5)
  ops->pause("fdatasync");  // the new ceiling is written in place but not durable yet
  EXPECT_FALSE(seq->draw().writeAhead);
  ASSERT_TRUE(seq->draw().writeAhead);  // 2 left: the next block is asked for
  std::thread ahead([&] {
    seq->writeAhead();
    seq->aheadFinished();
  });
  ops->waitPaused();
  EXPECT_EQ(seq->draw().answer.index, 3u);  // still the durable block
  EXPECT_EQ(seq->draw().answer.index, 4u);
  auto fifth = seq->draw();
  ASSERT_EQ(fifth.answer.kind, Kind::Pending);  // beyond the ceiling: promised, not answered
  EXPECT_EQ(fifth.ticket.index, 5u);
  Sequence::Answer settled;
  int dirSyncsWhenServed = -1;
  std::thread waiter([&] {
    settled = seq->settle(fifth.ticket);
    dirSyncsWhenServed = ops->completed("fdatasync");
  });
  ops->resume();
  waiter.join();
  ahead.join();
  EXPECT_EQ(settled.kind, Kind::Number);
  EXPECT_EQ(settled.index, 5u);
  EXPECT_EQ(settled.text, "13");
  EXPECT_EQ(dirSyncsWhenServed, 2) << "answer 5 was handed out before its block was durable";
  EXPECT_EQ(ops->calls("pwrite"), 2) << "the waiter wrote a block of its own";
}

// Group commit: with reserve_block = 1, the requests that wait while one write
// is in flight are all covered by ONE next write, not one each.
TEST_F(SequenceTest, RequestsWaitingDuringAWriteShareTheNextOne) {
  auto ops = std::make_shared<fibtest::FailingOps>();
  auto seq = opened({.reserveBlock = 1}, ops);  // [1, 2)
  EXPECT_EQ(seq->draw().answer.index, 1u);      // (asks for a write ahead: not run here)
  const int writesBefore = ops->calls("pwrite");
  ops->pause("fsync");
  auto first = seq->draw();
  ASSERT_EQ(first.answer.kind, Kind::Pending);
  Sequence::Answer firstAnswer;
  std::thread leader([&] { firstAnswer = seq->settle(first.ticket); });  // writes [2, 3)
  ops->waitPaused();
  // Eight more requests arrive while that write is in flight.
  std::vector<Sequence::Ticket> waiting;
  for (int i = 0; i < 8; ++i) {
    auto d = seq->draw();
    ASSERT_EQ(d.answer.kind, Kind::Pending);
    waiting.push_back(d.ticket);
  }
  std::vector<Sequence::Answer> answers(waiting.size());
  std::vector<std::thread> followers;
  for (std::size_t i = 0; i < waiting.size(); ++i)
    followers.emplace_back([&, i] { answers[i] = seq->settle(waiting[i]); });
  ops->resume();
  leader.join();
  for (auto& f : followers) f.join();
  EXPECT_EQ(firstAnswer.index, 2u);
  const auto reference = fibtest::referenceAnswers(10);
  for (std::size_t i = 0; i < answers.size(); ++i) {
    EXPECT_EQ(answers[i].kind, Kind::Number);
    EXPECT_EQ(answers[i].index, 3u + i);
    EXPECT_EQ(answers[i].text, reference[2 + i]);
  }
  EXPECT_EQ(ops->calls("pwrite"), writesBefore + 2) << "one write for the first request, ONE for the eight";
  EXPECT_EQ(seq->durableCeiling(), 11u);
  EXPECT_EQ(onDisk(), 11u);
}

// A failed group write answers all its waiters "unavailable" and hands their
// indices out again once a write works: no gap, no repeat.
TEST_F(SequenceTest, AFailedGroupWriteAnswersItsWaitersUnavailableAndReusesTheirIndices) {
  auto ops = std::make_shared<fibtest::FailingOps>();
  auto seq = opened({.reserveBlock = 1}, ops);  // [1, 2)
  EXPECT_EQ(seq->draw().answer.index, 1u);
  std::vector<Sequence::Ticket> tickets;
  for (int i = 0; i < 3; ++i) tickets.push_back(seq->draw().ticket);
  EXPECT_EQ(tickets.back().index, 4u);
  ops->fail("fsync", EIO, 1);
  for (const auto& t : tickets) {
    auto a = seq->settle(t);
    EXPECT_EQ(a.kind, Kind::Unavailable);
    EXPECT_EQ(a.text, "ERR unavailable: cannot persist the sequence state (Input/output error)");
  }
  EXPECT_EQ(ops->calls("fsync"), 2 + 1);  // one attempt for the three
  EXPECT_EQ(seq->draw().answer.kind, Kind::Unavailable);  // before the retry time: no promise
  now += std::chrono::seconds(1);
  auto again = seq->next();
  EXPECT_EQ(again.index, 2u);
  EXPECT_EQ(again.text, "3");
  EXPECT_EQ(seq->nextIndex(), 3u);
}

// Requests beyond the ceiling while the host's queue refused their settle, or
// whose connection went away, leave a gap: the next promise is above them.
TEST_F(SequenceTest, APromiseThatIsNeverSettledIsSkippedNotRepeated) {
  auto seq = opened({.reserveBlock = 1});
  EXPECT_EQ(seq->draw().answer.index, 1u);  // (its write ahead is not run)
  auto lost = seq->draw();  // never settled (e.g. worker queue full)
  ASSERT_EQ(lost.answer.kind, Kind::Pending);
  auto a = seq->next();
  EXPECT_EQ(a.index, lost.ticket.index + 1);
  seq->close();
  EXPECT_EQ(seq->settle(lost.ticket).text, "ERR unavailable: the service is stopping");
}

TEST_F(SequenceTest, AFailedReservationAheadKeepsServingTheDurableBlockAndRetriesInTheBackground) {
  auto ops = std::make_shared<fibtest::FailingOps>();
  auto seq = opened({.reserveBlock = 10}, ops);  // [1, 11)
  ops->fail("write", ENOSPC);
  take(*seq, 5);  // 5 left: the reservation ahead is tried, and fails
  seq->awaitIdle();
  EXPECT_FALSE(seq->ready());  // /readyz warns before the durable block runs out
  EXPECT_EQ(logger.count(protohost::LogLevel::Error), 1u);
  EXPECT_EQ(ops->calls("write"), 3);
  EXPECT_EQ(seq->durableCeiling(), 11u);
  take(*seq, 2);  // before the retry time: no new attempt
  seq->awaitIdle();
  EXPECT_EQ(ops->calls("write"), 3);

  ops->heal();
  now += std::chrono::milliseconds(1000);
  EXPECT_EQ(seq->next().index, 8u);  // the first request after the retry time tries again, ahead
  seq->awaitIdle();
  EXPECT_EQ(ops->calls("write"), 4);
  EXPECT_TRUE(seq->ready());
  EXPECT_EQ(seq->durableCeiling(), 21u);
  EXPECT_EQ(onDisk(), 21u);
  const auto more = take(*seq, 12);  // across the old ceiling without a single "unavailable"
  EXPECT_EQ(more.front(), 9u);
  EXPECT_EQ(more.back(), 20u);
  EXPECT_EQ(logger.count(protohost::LogLevel::Error), 1u);
}

TEST_F(SequenceTest, CloseWaitsForTheWriteInFlightThenRecordsTheExactNextAnswer) {
  auto ops = std::make_shared<fibtest::FailingOps>();
  auto seq = opened({.reserveBlock = 10}, ops);  // [1, 11)
  ops->pause("fsync");
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(seq->draw().writeAhead);
  ASSERT_TRUE(seq->draw().writeAhead);  // 5 left: the next block is being written
  std::thread ahead([&] {
    seq->writeAhead();
    seq->aheadFinished();
  });
  ops->waitPaused();
  for (std::uint64_t k = 6; k <= 10; ++k) EXPECT_EQ(seq->draw().answer.index, k);
  std::thread closer([&] { seq->close(); });
  while (seq->ready()) std::this_thread::yield();  // close() has begun: it waits for the write
  EXPECT_EQ(seq->draw().answer.text, "ERR unavailable: the service is stopping");
  ops->resume();
  closer.join();
  ahead.join();

  EXPECT_EQ(ops->completed("fsync"), 4);  // fresh file, first block, the block in flight, the release
  EXPECT_EQ(ops->completed("fsync-dir"), 1);  // all but the fresh file in place
  EXPECT_EQ(onDisk(), 11u);  // the exact next answer, written after the block in flight (not 21)
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_EQ(seq->next().text, "ERR unavailable: the service is stopping");
  seq.reset();
  auto again = opened({.reserveBlock = 10});
  EXPECT_EQ(again->next().index, 11u);  // no gap after a clean stop
}

// Lives of a sequence on one file, each ended by a crash (destroyed without
// close: a write ahead has just finished, or failed half-way) or by a clean
// close: no answer is ever handed out twice, and every answer is below the
// ceiling on disk when it is handed out. (SIGKILL mid-write: the e2e tests.)
TEST_F(SequenceTest, NoAnswerRepeatsAcrossCrashesAndRestarts) {
  struct Life {
    std::size_t answers;
    const char* failStep;  // the write ahead fails here (nullptr: it works)
    bool clean;
  };
  const Life lives[] = {{0, nullptr, false},  {1, nullptr, false},     {5, nullptr, false},
                        {6, nullptr, false},  {15, nullptr, true},     {16, "fsync-dir", false},
                        {9, "rename", false}, {31, nullptr, false},    {7, "fsync", true},
                        {10, nullptr, true},  {3, "fsync-dir", false}, {25, nullptr, false}};
  std::set<std::uint64_t> seen;
  std::uint64_t highest = 0;
  for (const Life& life : lives) {
    SCOPED_TRACE("life of " + std::to_string(life.answers) + " answers");
    auto ops = std::make_shared<fibtest::FailingOps>();
    auto seq = opened({.reserveBlock = 10}, ops);
    if (life.failStep) ops->fail(life.failStep, EIO);
    const std::uint64_t highestBefore = highest;
    for (std::size_t i = 0; i < life.answers; ++i) {
      auto a = seq->next();
      if (a.kind != Kind::Number) break;  // a failed write ahead: the durable block ran out
      ASSERT_TRUE(seen.insert(a.index).second) << "answer " << a.index << " handed out twice";
      ASSERT_GT(a.index, highestBefore) << "an answer of an earlier life";
      ASSERT_LT(a.index, onDisk()) << "answer " << a.index << " is not covered by the state on disk";
      highest = std::max(highest, a.index);
    }
    if (life.clean) seq->close();
    // else: "kill -9"; the destructor only lets a write in flight finish
  }
  auto last = opened({.reserveBlock = 10});
  EXPECT_GT(last->next().index, highest);
}

// A number settled on a worker whose done runs after close(): it must not go
// out, since close() recorded the next answer without it (a restart would repeat it).
TEST_F(SequenceTest, ASettledNumberIsNotHandedOutAfterCloseAndTheRecordedNextIsAboveWhatWas) {
  auto seq = opened({.reserveBlock = 1});
  EXPECT_EQ(seq->draw().answer.index, 1u);
  auto late = seq->draw();
  auto early = seq->draw();
  ASSERT_EQ(late.answer.kind, Kind::Pending);
  auto lateAnswer = seq->settle(late.ticket);  // durable now, its done not run yet
  auto earlyAnswer = seq->settle(early.ticket);
  ASSERT_EQ(lateAnswer.kind, Kind::Number);
  EXPECT_TRUE(seq->handOut(earlyAnswer));  // answer 3 goes out; answer 2 still waits for its done
  seq->close();
  EXPECT_FALSE(seq->handOut(lateAnswer));
  EXPECT_EQ(onDisk(), 4u);  // above answer 3, the highest handed out
}
