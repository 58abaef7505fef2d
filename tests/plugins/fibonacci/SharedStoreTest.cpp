// store = postgres without PostgreSQL: SharedStore (high-water mark, seeding,
// refusal of a counter that went back, give-back) and Sequence's block and
// jump logic for a shared store, against an in-memory counter that several
// "hosts" share. The real server is tested end to end (tests/plugins/e2e/fibonacci_postgres_e2e_test.cpp).

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "BigFibonacci.h"
#include "FibTestSupport.h"
#include "Sequence.h"
#include "SharedStore.h"
#include "StateFormat.h"

using namespace protohost::plugins::fibonacci;
using Kind = Sequence::Answer::Kind;
using Status = ReservationStore::Reservation::Status;
using fibtest::readFile;
using fibtest::TempDir;

namespace {

/// The shared row of every sequence name: what PostgreSQL holds. Thread-safe.
struct FakeDatabase {
  std::mutex mutex;
  std::map<std::string, std::uint64_t> next;  // name -> next
  bool down = false;                          // every call fails
  int takes = 0;
  int seeds = 0;  // INSERTs that created the row
};

/// SharedCounter on FakeDatabase, with PostgresCounter's semantics.
class FakeCounter : public SharedCounter {
 public:
  FakeCounter(std::shared_ptr<FakeDatabase> db, std::string name = "fibonacci")
      : db_(std::move(db)), name_(std::move(name)) {}
  Taken take(std::uint64_t block, std::uint64_t seed) override {
    std::lock_guard<std::mutex> lock(db_->mutex);
    Taken t;
    if (db_->down) {
      t.error = "cannot connect: connection refused";
      return t;
    }
    if (db_->next.emplace(name_, seed).second) ++db_->seeds;  // INSERT ... ON CONFLICT DO NOTHING
    t.start = db_->next[name_];
    db_->next[name_] += block;  // UPDATE ... SET next = next + $2 RETURNING next - $2
    ++db_->takes;
    t.ok = true;
    return t;
  }
  std::string raiseTo(std::uint64_t floor) override {
    std::lock_guard<std::mutex> lock(db_->mutex);
    if (db_->down) return "down";
    auto& n = db_->next[name_];
    n = std::max(n, floor);
    return "";
  }
  bool giveBack(std::uint64_t expected, std::uint64_t next) override {
    std::lock_guard<std::mutex> lock(db_->mutex);
    if (db_->down || db_->next[name_] != expected) return false;
    db_->next[name_] = next;
    return true;
  }
  std::string label() const override { return "fake sequence \"" + name_ + "\""; }

 private:
  std::shared_ptr<FakeDatabase> db_;
  std::string name_;
};

class SharedStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<SharedStore> store(const std::string& file) {
    return std::make_unique<SharedStore>(std::make_unique<SequenceStore>(dir.file(file), logger),
                                         std::make_unique<FakeCounter>(db), logger);
  }
  std::shared_ptr<Sequence> host(const std::string& file, SequenceOptions options) {
    auto seq = std::make_shared<Sequence>(store(file), options, logger, [this] { return now(); });
    seq->open();
    return seq;
  }
  /// The factory's retry timer, by hand: the first block (or a retry) on "a worker" (this thread).
  static bool retry(Sequence& seq) {
    if (!seq.wantRetry()) return false;
    seq.writeAhead();
    seq.aheadFinished();
    return true;
  }
  std::uint64_t onDisk(const std::string& file) { return decodeState(readFile(dir.file(file))); }

  TempDir dir;
  std::shared_ptr<FakeDatabase> db = std::make_shared<FakeDatabase>();
  fibtest::LockedLogger logger;
  fibtest::ManualClock now;
};

}  // namespace

TEST_F(SharedStoreTest, SeedsANewSequenceFromTheLocalStateAndRecordsEachBlockEndFirst) {
  {
    SequenceStore local(dir.file("a.state"), logger);
    local.open();
    ASSERT_EQ(local.reserve(1, 499, 1000000).status, Status::Reserved);  // the file store served up to 499
  }
  auto a = store("a.state");
  EXPECT_EQ(a->open().next, 500u);
  EXPECT_TRUE(a->blocksMayJump());
  EXPECT_FALSE(a->reserveAtOpen());
  auto r = a->reserve(500, 100, 1000000);
  ASSERT_EQ(r.status, Status::Reserved) << r.error;
  EXPECT_EQ(r.start, 500u);
  EXPECT_EQ(r.ceiling, 600u);
  EXPECT_EQ(db->next["fibonacci"], 600u);
  EXPECT_EQ(onDisk("a.state"), 600u);  // the local high-water mark
  EXPECT_EQ(a->highWater(), 600u);

  // A second host with a fresh state file: the row exists, its seed (1) loses.
  auto b = store("b.state");
  EXPECT_EQ(b->open().next, 1u);
  r = b->reserve(1, 100, 1000000);
  ASSERT_EQ(r.status, Status::Reserved) << r.error;
  EXPECT_EQ(r.start, 600u);
  EXPECT_EQ(onDisk("b.state"), 700u);
  EXPECT_EQ(db->seeds, 1);
}

TEST_F(SharedStoreTest, RefusesABlockBelowItsHighWaterMarkAndRaisesTheCounter) {
  auto a = store("a.state");
  a->open();
  ASSERT_EQ(a->reserve(1, 100, 1000000).status, Status::Reserved);
  ASSERT_EQ(a->reserve(101, 100, 1000000).status, Status::Reserved);  // [101, 201)
  db->next["fibonacci"] = 50;  // restored from a backup taken before both blocks
  auto r = a->reserve(201, 100, 1000000);
  EXPECT_EQ(r.status, Status::Failed);
  EXPECT_NE(r.error.find("below the high-water mark 201"), std::string::npos) << r.error;
  EXPECT_EQ(r.clientReason, "the shared sequence went back below this host's high-water mark");
  EXPECT_EQ(onDisk("a.state"), 201u);        // not lowered
  EXPECT_EQ(db->next["fibonacci"], 201u);    // raised to the mark
  EXPECT_EQ(logger.count(protohost::LogLevel::Error), 1u);
  r = a->reserve(201, 100, 1000000);
  ASSERT_EQ(r.status, Status::Reserved) << r.error;
  EXPECT_EQ(r.start, 201u);
}

TEST_F(SharedStoreTest, CounterDownFailsClosedWithTheClientReason) {
  auto a = store("a.state");
  a->open();
  db->down = true;
  auto r = a->reserve(1, 100, 1000000);
  EXPECT_EQ(r.status, Status::Failed);
  EXPECT_EQ(r.clientReason, "the shared sequence store (PostgreSQL) is unavailable");
  EXPECT_EQ(onDisk("a.state"), 1u);
}

TEST_F(SharedStoreTest, StopsAtTheLimit) {
  auto a = store("a.state");
  a->open();
  auto r = a->reserve(1, 100, 51);
  ASSERT_EQ(r.status, Status::Reserved);
  EXPECT_EQ(r.ceiling, 51u);
  EXPECT_EQ(a->reserve(51, 100, 51).status, Status::Exhausted);
}

TEST_F(SharedStoreTest, CleanStopGivesTheTailBackOnlyWhenNobodyReservedSince) {
  {
    auto a = store("a.state");
    a->open();
    ASSERT_EQ(a->reserve(1, 100, 1000000).status, Status::Reserved);
    auto rel = a->release(40);
    EXPECT_TRUE(rel.recorded) << rel.error << rel.note;
    EXPECT_EQ(db->next["fibonacci"], 40u);
    EXPECT_EQ(onDisk("a.state"), 40u);
  }
  {
    // Two adjacent blocks of ours (the second reserved ahead): the tail of both goes back.
    auto a = store("a.state");
    a->open();
    ASSERT_EQ(a->reserve(40, 100, 1000000).start, 40u);   // [40, 140)
    ASSERT_EQ(a->reserve(140, 100, 1000000).start, 140u);  // [140, 240)
    EXPECT_TRUE(a->release(90).recorded);
    EXPECT_EQ(db->next["fibonacci"], 90u);
  }
  auto a = store("a.state");
  auto b = store("b.state");
  a->open();
  b->open();
  ASSERT_EQ(a->reserve(90, 100, 1000000).start, 90u);  // [90, 190)
  ASSERT_EQ(b->reserve(1, 100, 1000000).start, 190u);  // [190, 290)
  auto rel = a->release(110);
  EXPECT_FALSE(rel.recorded);
  EXPECT_EQ(db->next["fibonacci"], 290u);  // b reserved since: a's tail stays a gap
  EXPECT_EQ(onDisk("a.state"), 110u);      // the local mark is exact
}

TEST_F(SharedStoreTest, NotReadyUntilTheFirstBlockWhichAWorkerReserves) {
  auto seq = host("a.state", {.reserveBlock = 10});
  EXPECT_FALSE(seq->ready());
  EXPECT_EQ(db->takes, 0);  // open never contacts the counter
  EXPECT_TRUE(retry(*seq));
  EXPECT_TRUE(seq->ready());
  EXPECT_FALSE(retry(*seq));  // nothing to retry
  EXPECT_EQ(seq->next().text, "2");
}

TEST_F(SharedStoreTest, TwoHostsInterleavedHandOutDisjointFibonacciNumbersWithOneTakePerBlock) {
  constexpr std::size_t kBlock = 16, kEach = 400;
  const auto reference = fibtest::referenceAnswers(2 * kEach + 4 * kBlock);
  auto a = host("a.state", {.reserveBlock = kBlock});
  auto b = host("b.state", {.reserveBlock = kBlock});
  retry(*a);
  retry(*b);
  std::map<std::uint64_t, char> owner;
  std::uint64_t lastA = 0, lastB = 0;
  for (std::size_t i = 0; i < kEach; ++i) {
    for (auto* h : {a.get(), b.get()}) {
      auto ans = h->next();
      ASSERT_EQ(ans.kind, Kind::Number) << ans.text;
      ASSERT_LT(ans.index, reference.size() + 1);
      EXPECT_EQ(ans.text, reference[ans.index - 1]) << "answer " << ans.index;
      const char who = h == a.get() ? 'a' : 'b';
      EXPECT_TRUE(owner.emplace(ans.index, who).second) << "answer " << ans.index << " handed out twice";
      auto& last = who == 'a' ? lastA : lastB;
      EXPECT_GT(ans.index, last) << "one host's answers increase";
      last = ans.index;
    }
  }
  // Reserve-ahead: one take per block (plus the one ahead), never one per answer.
  EXPECT_LE(db->takes, static_cast<int>(2 * (kEach / kBlock + 2)));
  a->close();
  b->close();
}

TEST_F(SharedStoreTest, AJumpPositionsTheCursorByFastDoublingOnTheWriter) {
  db->next["fibonacci"] = 5000;  // other hosts took answers 1..4999
  auto seq = host("a.state", {.reserveBlock = 8});
  retry(*seq);
  const auto reference = fibtest::referenceAnswers(5200);
  auto first = seq->next();
  EXPECT_EQ(first.index, 5000u);
  EXPECT_EQ(first.text, reference[4999]);
  // The block ahead (reserved at half the block) jumps over another host's block.
  for (int i = 0; i < 3; ++i) seq->next();  // 5001..5003: half of [5000, 5008) left, the next block reserved
  seq->awaitIdle();
  db->next["fibonacci"] += 100;  // another host's 100
  for (std::uint64_t k = 5004; k < 5008; ++k) EXPECT_EQ(seq->next().index, k);
  auto jumped = seq->next();
  EXPECT_EQ(jumped.index, 5008u) << "the block reserved ahead before the other host's";
  seq->awaitIdle();
  for (int i = 0; i < 8; ++i) seq->next();
  auto afterGap = seq->next();
  EXPECT_GE(afterGap.index, 5116u);
  ASSERT_LT(afterGap.index, reference.size());
  EXPECT_EQ(afterGap.text, reference[afterGap.index - 1]);
}

TEST_F(SharedStoreTest, CounterDownAnswersErrUnavailableAndNotReadyThenResumesWithoutARepeat) {
  auto seq = host("a.state", {.reserveBlock = 4, .retryInterval = std::chrono::milliseconds(1000)});
  retry(*seq);  // [1, 5)
  db->down = true;
  // The write ahead (at answer 2) fails: the rest of the block is still served, then ERR at once.
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 4; ++i) {
    auto a = seq->next();
    ASSERT_EQ(a.kind, Kind::Number) << a.text;
    seen.insert(a.index);
  }
  EXPECT_FALSE(seq->ready());
  auto refused = seq->next();
  EXPECT_EQ(refused.kind, Kind::Unavailable);
  EXPECT_EQ(refused.text, "ERR unavailable: the shared sequence store (PostgreSQL) is unavailable");
  EXPECT_FALSE(retry(*seq));  // not before the retry interval
  db->down = false;
  now += std::chrono::milliseconds(1000);
  EXPECT_TRUE(retry(*seq));  // the factory's timer: no request needed
  EXPECT_TRUE(seq->ready());
  for (int i = 0; i < 20; ++i) {
    auto a = seq->next();
    ASSERT_EQ(a.kind, Kind::Number) << a.text;
    EXPECT_TRUE(seen.insert(a.index).second) << "answer " << a.index << " repeated";
  }
}

TEST_F(SharedStoreTest, ConcurrentDrawsAndSettlesOnTwoHostsNeverRepeat) {
  constexpr int kThreads = 4, kEach = 500;
  auto a = host("a.state", {.reserveBlock = 8});
  auto b = host("b.state", {.reserveBlock = 8});
  retry(*a);
  retry(*b);
  std::mutex mutex;
  std::set<std::uint64_t> seen;
  int repeats = 0, errors = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      Sequence& s = t % 2 ? *a : *b;
      for (int i = 0; i < kEach; ++i) {
        auto ans = s.next();  // draw, then the write ahead or the settle (group commit) on this thread
        std::lock_guard<std::mutex> lock(mutex);
        if (ans.kind != Kind::Number) {
          ++errors;
          continue;
        }
        if (!seen.insert(ans.index).second) ++repeats;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(repeats, 0);
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kThreads * kEach));
}
