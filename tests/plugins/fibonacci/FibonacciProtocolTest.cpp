#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "FibTestSupport.h"
#include "FibonacciProtocol.h"
#include "StateFormat.h"

using namespace protohost::plugins::fibonacci;
using protohost::testing::MemoryTransport;
using fibtest::lines;
using fibtest::TempDir;

namespace {

class FibonacciProtocolTest : public ::testing::Test {
 protected:
  std::shared_ptr<Sequence> open(const std::string& path, SequenceOptions options = {},
                                 std::shared_ptr<FileOps> ops = std::make_shared<FileOps>()) {
    auto seq = std::make_shared<Sequence>(std::make_unique<SequenceStore>(path, logger, std::move(ops)), options,
                                          logger, [this] { return now; });
    seq->open();
    return seq;
  }

  TempDir dir;
  fibtest::LockedLogger logger;
  Sequence::Clock::time_point now{};
};

}  // namespace

TEST_F(FibonacciProtocolTest, FirstAnswersInEveryChunkSizeWithCrlfAndLf) {
  const std::string requests = "NEXT\r\nNEXT\nNEXT\r\n\nanything at all\n";
  for (std::size_t chunk = 1; chunk <= requests.size(); ++chunk) {
    SCOPED_TRACE("chunk size " + std::to_string(chunk));
    auto seq = open(dir.file("chunk" + std::to_string(chunk) + ".state"));
    FibonacciProtocol p(seq, 1024);
    MemoryTransport t;
    t.connect(p);
    t.feed(p, requests, chunk);
    EXPECT_EQ(t.value(), "2\r\n3\r\n5\r\n8\r\n13\r\n");
    EXPECT_FALSE(t.closed());
  }
}

TEST_F(FibonacciProtocolTest, NoAnswerBeforeTheLineEnds) {
  auto seq = open(dir.file("fib.state"));
  FibonacciProtocol p(seq, 1024);
  MemoryTransport t;
  t.connect(p);
  t.feed(p, "NEXT");  // the article's clients send no newline: we wait for one
  EXPECT_EQ(t.value(), "");
  t.feed(p, "\n");
  EXPECT_EQ(t.value(), "2\r\n");
}

TEST_F(FibonacciProtocolTest, ThousandthAnswerIsF1002) {
  auto seq = open(dir.file("fib.state"));
  FibonacciProtocol p(seq, 1024);
  MemoryTransport t;
  t.connect(p);
  std::string requests;
  for (int i = 0; i < 1000; ++i) requests += "NEXT\n";
  t.feed(p, requests, 4096);
  auto answers = lines(t.value());
  ASSERT_EQ(answers.size(), 1000u);
  EXPECT_EQ(answers[999], fibtest::kF1002);
  const auto reference = fibtest::referenceAnswers(1000);
  for (std::size_t i = 0; i < 1000; ++i) ASSERT_EQ(answers[i], reference[i]) << "answer " << i + 1;
}

TEST_F(FibonacciProtocolTest, ValuesPastTwoToTheSixtyFour) {
  auto seq = open(dir.file("fib.state"));
  FibonacciProtocol p(seq, 1024);
  MemoryTransport t;
  t.connect(p);
  std::string requests;
  for (int i = 0; i < 100; ++i) requests += "NEXT\n";
  t.feed(p, requests);
  auto answers = lines(t.value());
  ASSERT_EQ(answers.size(), 100u);
  EXPECT_EQ(answers[90], "12200160415121876738");  // answer 91 = F(93) < 2^64
  EXPECT_EQ(answers[91], "19740274219868223167");  // answer 92 = F(94) > 2^64 - 1
  EXPECT_EQ(answers[92], "31940434634990099905");
  EXPECT_EQ(answers[97], "354224848179261915075");  // F(100)
}

TEST_F(FibonacciProtocolTest, MaxIndexCapAnswersAnErrorLine) {
  auto seq = open(dir.file("fib.state"), {.maxIndex = 3});
  FibonacciProtocol p(seq, 1024);
  MemoryTransport t;
  t.connect(p);
  t.feed(p, "NEXT\nNEXT\nNEXT\nNEXT\nNEXT\n");
  EXPECT_EQ(t.value(), "2\r\n3\r\n5\r\nERR exhausted: max_index 3 reached\r\nERR exhausted: max_index 3 reached\r\n");
  EXPECT_FALSE(t.closed());
}

TEST_F(FibonacciProtocolTest, SeveralProtocolsShareOneSequence) {
  auto seq = open(dir.file("fib.state"), {.reserveBlock = 5});
  constexpr int kClients = 7;
  std::vector<std::unique_ptr<FibonacciProtocol>> protocols;
  std::vector<std::unique_ptr<MemoryTransport>> transports;
  for (int i = 0; i < kClients; ++i) {
    protocols.push_back(std::make_unique<FibonacciProtocol>(seq, 1024));
    transports.push_back(std::make_unique<MemoryTransport>());
    transports.back()->connect(*protocols.back());
  }
  for (int round = 0; round < 30; ++round)
    for (int i = 0; i < kClients; ++i)
      if ((round + i) % 3 != 0) transports[i]->feed(*protocols[i], "NEXT\r\n");
  std::set<std::string> all;
  std::size_t total = 0;
  for (auto& t : transports)
    for (const auto& v : lines(t->value())) {
      ++total;
      EXPECT_TRUE(all.insert(v).second) << v << " handed out twice";
    }
  const auto reference = fibtest::referenceAnswers(total);
  EXPECT_EQ(all, std::set<std::string>(reference.begin(), reference.end()));
}

TEST_F(FibonacciProtocolTest, FourThreadsOfConnectionsNeverShareAnAnswer) {
  auto seq = open(dir.file("fib.state"), {.reserveBlock = 16});
  constexpr int kThreads = 4, kRequests = 1500;
  std::vector<std::string> outputs(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      FibonacciProtocol p(seq, 1024);
      MemoryTransport t;
      t.connect(p);
      for (int r = 0; r < kRequests; ++r) t.feed(p, "NEXT\n");
      outputs[i] = t.value();
    });
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (const auto& out : outputs)
    for (const auto& v : lines(out)) EXPECT_TRUE(all.insert(v).second) << v << " handed out twice";
  const auto reference = fibtest::referenceAnswers(kThreads * kRequests);
  EXPECT_EQ(all, std::set<std::string>(reference.begin(), reference.end()));
}

TEST_F(FibonacciProtocolTest, WriteFailureAnswersUnavailableAndNeverPassesTheCeiling) {
  auto ops = std::make_shared<fibtest::FailingOps>();
  auto seq = open(dir.file("fib.state"), {.reserveBlock = 3}, ops);
  ops->fail("fsync", ENOSPC);
  FibonacciProtocol p(seq, 1024);
  MemoryTransport t;
  t.connect(p);
  t.feed(p, "NEXT\nNEXT\nNEXT\n");  // the durable block [1, 4); the write ahead of it fails
  EXPECT_EQ(t.take(), "2\r\n3\r\n5\r\n");
  t.feed(p, "NEXT\nNEXT\n");
  EXPECT_EQ(t.take(),
            "ERR unavailable: cannot persist the sequence state (No space left on device)\r\n"
            "ERR unavailable: cannot persist the sequence state (No space left on device)\r\n");
  EXPECT_EQ(decodeState(fibtest::readFile(dir.file("fib.state"))), 4u);
  EXPECT_FALSE(t.closed());
}

TEST_F(FibonacciProtocolTest, StateDirectoryGoneAnswersUnavailable) {
  // Works as root, where chmod 0555 would not stop the writes.
  std::filesystem::create_directory(dir.file("state"));
  auto seq = open(dir.file("state/fib.state"), {.reserveBlock = 2});
  std::filesystem::rename(dir.file("state"), dir.file("elsewhere"));
  FibonacciProtocol p(seq, 1024);
  MemoryTransport t;
  t.connect(p);
  t.feed(p, "a\nb\n");  // the durable block [1, 3); the write ahead of it fails
  EXPECT_EQ(t.take(), "2\r\n3\r\n");
  t.feed(p, "c\n");
  EXPECT_EQ(t.take(), "ERR unavailable: cannot persist the sequence state (No such file or directory)\r\n");
  EXPECT_EQ(decodeState(fibtest::readFile(dir.file("elsewhere/fib.state"))), 3u);
}

TEST_F(FibonacciProtocolTest, OverlongLineGetsAnErrorAndClose) {
  auto seq = open(dir.file("fib.state"));
  for (std::size_t chunk : {1u, 7u, 100u, 5000u}) {
    FibonacciProtocol p(seq, 16);
    MemoryTransport t;
    t.connect(p);
    t.feed(p, "NEXT\n" + std::string(17, 'x') + "\nNEXT\n", chunk);
    auto out = lines(t.value());
    ASSERT_EQ(out.size(), 2u) << t.value();
    EXPECT_EQ(out[1], "ERR line too long: the limit is 16 bytes");
    EXPECT_TRUE(t.closed());
  }
  // A line of exactly the limit is fine.
  FibonacciProtocol p(seq, 16);
  MemoryTransport t;
  t.connect(p);
  t.feed(p, std::string(16, 'x') + "\n");
  EXPECT_EQ(lines(t.value()).size(), 1u);
  EXPECT_FALSE(t.closed());
}
