// net/ProxyStage: the PROXY header as the connection's pre-stage. The parser
// itself is covered by ProxyHeaderTest; this checks what the stage adds on
// top: the endpoints it hands the connection, how many bytes were its own
// (fed in every chunk size), and that every failure is counted while the log
// lines are rate-limited to one a second per listener.

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "ChunkFeeder.h"
#include "ProxyHeaders.h"
#include "base/ListenerStats.h"
#include "net/ProxyStage.h"

namespace protohost::host {
namespace {

namespace v2 = protohost::testing::proxyv2;
using Step = PreStage::Step;
using Kind = DisconnectReason::Kind;

struct CapturedLog final : Logger {
  std::vector<std::string> lines;
  void log(LogLevel level, std::string_view message) override {
    if (level >= LogLevel::Info) lines.emplace_back(message);
  }
};

class ProxyStageTest : public ::testing::Test {
 protected:
  ListenerStats stats;
  CapturedLog log;
  ProxyStage make() { return ProxyStage(stats, log, 250, Address{"10.9.9.9", 4000}); }
};

TEST_F(ProxyStageTest, AV1HeaderIsDoneWithItsEndpointsAndLeavesThePayloadInEveryChunkSize) {
  const std::string header = "PROXY TCP4 192.0.2.7 198.51.100.2 51000 8889\r\n";
  const std::string input = header + "NEXT\n";
  for (std::size_t chunk = 1; chunk <= input.size(); ++chunk) {
    ProxyStage stage = make();
    std::string payload;
    bool done = false;
    for (std::string_view piece : chunkfeeder::split(input, chunk)) {
      if (done) {
        payload.append(piece);
        continue;
      }
      const PreStage::Outcome r = stage.feed(piece);
      ASSERT_NE(r.step, Step::Failed) << "chunk " << chunk;
      if (r.step == Step::Done) {
        done = true;
        payload.append(piece.substr(r.consumed));
      }
    }
    ASSERT_TRUE(done) << "chunk " << chunk;
    EXPECT_EQ(payload, "NEXT\n") << "chunk " << chunk;
    ASSERT_TRUE(stage.peer().has_value());
    EXPECT_EQ(stage.peer()->toString(), "192.0.2.7:51000");
    EXPECT_EQ(stage.local()->toString(), "198.51.100.2:8889");
  }
  EXPECT_EQ(stats.proxyHeaderErrors.load(), 0u);
}

TEST_F(ProxyStageTest, AV2LocalHeaderIsDoneWithoutEndpoints) {
  ProxyStage stage = make();
  const PreStage::Outcome r = stage.feed(v2::header(v2::kLocal, v2::kUnspec));
  EXPECT_EQ(r.step, Step::Done);
  EXPECT_FALSE(stage.peer().has_value());
  EXPECT_FALSE(stage.local().has_value());
}

TEST_F(ProxyStageTest, AnInvalidHeaderFailsAtItsFirstByteAndIsCounted) {
  ProxyStage stage = make();
  const PreStage::Outcome r = stage.feed("hello\n");
  ASSERT_EQ(r.step, Step::Failed);
  EXPECT_EQ(r.failure.kind, Kind::Error);
  EXPECT_NE(r.failure.detail.find("invalid PROXY header"), std::string::npos) << r.failure.detail;
  EXPECT_EQ(stats.proxyHeaderErrors.load(), 1u);
  ASSERT_EQ(log.lines.size(), 1u);
  EXPECT_NE(log.lines[0].find("protohost_proxy_header_errors_total"), std::string::npos);
}

TEST_F(ProxyStageTest, EndedEarlySaysWhyAndCountsEveryFailureButLogsOnceASecond) {
  ProxyStage late = make();
  late.feed("PROXY TCP4 ");
  const DisconnectReason timeout = late.endedEarly(Kind::Timeout);
  EXPECT_EQ(timeout.kind, Kind::Timeout);
  EXPECT_EQ(timeout.detail, "no complete PROXY header within proxy_protocol_timeout_ms = 250");

  ProxyStage cut = make();
  cut.feed("PROXY TCP4 ");
  const DisconnectReason eof = cut.endedEarly(Kind::ClosedByPeer);
  EXPECT_EQ(eof.kind, Kind::ClosedByPeer);
  EXPECT_EQ(eof.detail, "peer closed after 11 bytes of a PROXY header");

  EXPECT_EQ(stats.proxyHeaderErrors.load(), 2u);
  EXPECT_EQ(log.lines.size(), 1u) << "the second failure within a second is counted, not logged";
}

}  // namespace
}  // namespace protohost::host
