#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <thread>

#include "FibTestSupport.h"
#include "Sequence.h"
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
                                      [this] { return now; });
  }
  std::uint64_t onDisk() { return decodeState(readFile(path)); }

  TempDir dir;
  std::string path = dir.file("fib.state");
  fibtest::LockedLogger logger;
  Sequence::Clock::time_point now{};
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
  auto seq = make({.reserveBlock = 100}, ops);
  seq->open();  // the fresh file: one write
  EXPECT_EQ(ops->calls("fsync"), 1);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(seq->next().kind, Kind::Number);
  EXPECT_EQ(ops->calls("fsync"), 1 + 10);
  EXPECT_EQ(ops->calls("fsync-dir"), 1 + 10);
  EXPECT_EQ(onDisk(), 1001u);
  EXPECT_EQ(seq->next().kind, Kind::Number);
  EXPECT_EQ(ops->calls("fsync"), 1 + 11);
  EXPECT_EQ(onDisk(), 1101u);
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
  auto seq = make({.reserveBlock = 4}, ops);
  seq->open();
  for (const char* expected : {"2", "3", "5", "8"}) EXPECT_EQ(seq->next().text, expected);
  ops->fail("write", ENOSPC);
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
  auto seq = make({.reserveBlock = 2}, ops);
  seq->open();
  seq->next();
  seq->next();
  ops->fail("fsync", EIO, 1);
  EXPECT_EQ(seq->next().text, "ERR unavailable: cannot persist the sequence state (Input/output error)");
  int creates = ops->calls("create");
  now += std::chrono::seconds(1);
  EXPECT_EQ(seq->next().text, "5");
  EXPECT_EQ(ops->calls("create"), creates + 1);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST_F(SequenceTest, FailureLogsAreRateLimited) {
  auto ops = std::make_shared<fibtest::FailingOps>();
  auto seq = make({.reserveBlock = 1}, ops);
  seq->open();
  ops->fail("fsync-dir", EROFS);
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
  fibtest::writeFile(path, encodeState(93));
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
