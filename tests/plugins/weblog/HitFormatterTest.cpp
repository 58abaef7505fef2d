#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "HitFormatter.h"
#include "WeblogTestSupport.h"

using namespace protohost::plugins::weblog;
using weblogtest::parseHits;

TEST(HitFormatter, FieldNotesVectorsByteExact) {
  EXPECT_EQ(formatLogLine(weblogtest::kClfLine), weblogtest::kClfHit);
  EXPECT_EQ(formatLogLine(weblogtest::kCombinedLine), weblogtest::kCombinedHit);
}

TEST(HitFormatter, CombinedLineKeepsReferrerAndAgent) {
  EXPECT_EQ(formatLogLine("192.168.1.5 - - [05/Mar/2010:10:00:00 +0900] \"GET /x HTTP/1.1\" 200 512 "
                          "\"http://a/?b=1&c=2\" \"Mozilla/5.0 \\\"quoted\\\"\""),
            "<hit ip=\"192.168.1.5\" timestamp=\"05/Mar/2010:10:00:00 +0900\" request=\"GET /x HTTP/1.1\" "
            "status=\"200\" bytes=\"512\" referrer=\"http://a/?b=1&amp;c=2\" "
            "agent=\"Mozilla/5.0 \\&quot;quoted\\&quot;\"/>");
}

TEST(HitFormatter, UnparsableLineGivesNothing) {
  EXPECT_FALSE(formatLogLine("not a log line"));
  EXPECT_FALSE(formatLogLine(""));
}

TEST(HitFormatter, VectorsParseBackWithExpatInEveryChunkSize) {
  const std::string stream = std::string(kStreamStart) + weblogtest::kClfHit + weblogtest::kCombinedHit;
  for (std::size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    auto elements = parseHits(stream, chunk);
    ASSERT_EQ(elements.size(), 2u) << "chunk " << chunk;
    const std::vector<std::string> order = {"ip", "timestamp", "request", "status", "bytes", "referrer", "agent"};
    for (const auto& e : elements) {
      EXPECT_EQ(e.name, "hit");
      ASSERT_EQ(e.attributes.size(), order.size());
      for (std::size_t i = 0; i < order.size(); ++i) EXPECT_EQ(e.attributes[i].first, order[i]);
    }
    EXPECT_EQ(elements[1].attr("request"), "GET /a?x=1&y=<2> HTTP/1.1");
  }
}

TEST(HitFormatter, HostileBytesInEveryFieldStayWellFormed) {
  // Raw & < > " ' in the unquoted host field, control characters, invalid UTF-8
  // in the quoted fields; Apache would escape some of this, a hostile log need not.
  const std::string line = std::string("<&\">'x - - [01/Jan/2024:00:00:00 +0000\x01] \"GET /\x1b[31m\xff\xfe") +
                           "<script>&amp; HTTP/1.1\" 200 1 \"\xc3\x28\xed\xa0\x80\" \"agent\x7f\t'\xef\xbf\xbf\"";
  auto hit = formatLogLine(line);
  ASSERT_TRUE(hit);
  auto elements = parseHits(std::string(kStreamStart) + *hit);
  ASSERT_EQ(elements.size(), 1u);
  EXPECT_EQ(elements[0].attr("ip"), "<&\">'x");
  EXPECT_EQ(elements[0].attr("timestamp"), "01/Jan/2024:00:00:00 +0000");
  EXPECT_EQ(elements[0].attr("request"), "GET /[31m\xEF\xBF\xBD\xEF\xBF\xBD<script>&amp; HTTP/1.1");
  EXPECT_EQ(elements[0].attr("referrer"), "\xEF\xBF\xBD(\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(elements[0].attr("agent"), "agent\x7f\t'");
}

TEST(HitFormatter, MaxHitBytesBoundsTheWorstCase) {
  // Every byte a quote: the largest expansion (" -> &quot;).
  std::string worst(1000, '"');
  std::string line = worst + " - - [" + worst + "] \"\" 200 1";
  auto hit = formatLogLine(line);
  ASSERT_TRUE(hit);
  EXPECT_LE(hit->size(), maxHitBytes(line.size()));
}

TEST(HitFormatter, EveryLineOfTheShippedSampleLogParses) {
  std::ifstream in(std::string(PROTOHOST_SOURCE_DIR) + "/etc/sample-access.log");
  ASSERT_TRUE(in) << "etc/sample-access.log";
  std::string stream(kStreamStart);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    auto hit = formatLogLine(line);
    EXPECT_TRUE(hit) << line;
    if (hit) stream += *hit;
    ++n;
  }
  EXPECT_GE(n, 10);
  EXPECT_EQ(parseHits(stream, 13).size(), static_cast<std::size_t>(n));
}
