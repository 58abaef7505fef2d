#include <gtest/gtest.h>

#include "ClfParser.h"
#include "WeblogTestSupport.h"

using protohost::plugins::weblog::parseLogLine;

TEST(ClfParser, CommonLogFormatVector) {
  auto f = parseLogLine(weblogtest::kClfLine);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->ip, "127.0.0.1");
  EXPECT_EQ(f->timestamp, "10/Oct/2000:13:55:36 -0700");
  EXPECT_EQ(f->request, "GET /apache_pb.gif HTTP/1.0");
  EXPECT_EQ(f->status, "200");
  EXPECT_EQ(f->bytes, "2326");
  EXPECT_EQ(f->referrer, "-");
  EXPECT_EQ(f->agent, "-");
}

TEST(ClfParser, CombinedLogFormatVector) {
  auto f = parseLogLine(weblogtest::kCombinedLine);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->ip, "10.0.0.1");
  EXPECT_EQ(f->timestamp, "01/Jan/2024:00:00:00 +0000");
  EXPECT_EQ(f->request, "GET /a?x=1&y=<2> HTTP/1.1");
  EXPECT_EQ(f->status, "404");
  EXPECT_EQ(f->bytes, "-");
  EXPECT_EQ(f->referrer, "-");
  EXPECT_EQ(f->agent, "curl");
}

TEST(ClfParser, CombinedWithRealReferrerAndAgent) {
  auto f = parseLogLine(
      "2001:db8::1 - alice [10/Oct/2000:13:55:36 -0700] \"GET /index.html HTTP/1.1\" 304 0 "
      "\"http://example.com/start?q=a b\" \"Mozilla/5.0 (X11; Linux x86_64)\"");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->ip, "2001:db8::1");
  EXPECT_EQ(f->status, "304");
  EXPECT_EQ(f->bytes, "0");
  EXPECT_EQ(f->referrer, "http://example.com/start?q=a b");
  EXPECT_EQ(f->agent, "Mozilla/5.0 (X11; Linux x86_64)");
}

TEST(ClfParser, ExtraFieldsAfterTheAgentAreIgnored) {
  // nginx's default "main" format adds "$http_x_forwarded_for".
  const std::string line = weblogtest::kCombinedLine + " \"203.0.113.9\" 0.004";  // fields view into it
  auto f = parseLogLine(line);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->agent, "curl");
}

TEST(ClfParser, ToleratesCrLfTrailingSpacesAndRepeatedSpaces) {
  const std::string crlf = weblogtest::kClfLine + "\r";
  const std::string spaces = weblogtest::kClfLine + "   ";
  auto f = parseLogLine(crlf);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->bytes, "2326");
  f = parseLogLine(spaces);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->bytes, "2326");
  f = parseLogLine("127.0.0.1  -  -  [x]  \"GET / HTTP/1.0\"  200  5");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->timestamp, "x");
}

TEST(ClfParser, EscapedQuotesStayInsideTheField) {
  // Apache writes a quote inside %r or a header as \" and a backslash as \\.
  auto f = parseLogLine(
      "10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] \"GET /\\\"x\\\" HTTP/1.1\" 200 1 \"a\\\\\" \"say \\\"hi\\\"\"");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->request, "GET /\\\"x\\\" HTTP/1.1");
  EXPECT_EQ(f->referrer, "a\\\\");
  EXPECT_EQ(f->agent, "say \\\"hi\\\"");
}

TEST(ClfParser, EmptyRequestIsAllowed) {
  // Apache logs "-" or "" for a connection that sent nothing.
  auto f = parseLogLine("10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] \"\" 408 -");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->request, "");
}

TEST(ClfParser, RejectsWhatIsNotCommonOrCombined) {
  const char* bad[] = {
      "",
      "   ",
      "garbage",
      "127.0.0.1 - frank",
      "127.0.0.1 - frank 10/Oct/2000:13:55:36 \"GET / HTTP/1.0\" 200 1",       // no brackets
      "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700 \"GET / HTTP/1.0\" 200 1",  // unclosed bracket
      "127.0.0.1 - frank [x] GET / HTTP/1.0 200 1",                            // unquoted request
      "127.0.0.1 - frank [x] \"GET / HTTP/1.0 200 1",                          // unterminated quote
      "127.0.0.1 - frank [x] \"GET / HTTP/1.0\" 20 1",                         // status not 3 digits
      "127.0.0.1 - frank [x] \"GET / HTTP/1.0\" abc 1",
      "127.0.0.1 - frank [x] \"GET / HTTP/1.0\" 200 12a",                      // bytes not a number
      "127.0.0.1 - frank [x] \"GET / HTTP/1.0\" 200",                          // no bytes
      "127.0.0.1 - frank [x] \"GET / HTTP/1.0\" 200 1 \"-\"",                  // referrer without agent
      "127.0.0.1 - frank [x] \"GET / HTTP/1.0\" 200 1 - -",                    // unquoted referrer
      "127.0.0.1 - frank [x] \"GET / HTTP/1.0\" 200 1 \"-\" \"curl",           // unterminated agent
      "127.0.0.1 - frank [x] \"GET / HTTP/1.0\" 200 1 \"-\" \"curl\"x",        // junk glued to the agent
      "127.0.0.1 - frank [x] \"GET /\"x\" HTTP/1.0\" 200 1",                   // raw quote inside %r
  };
  for (const char* line : bad) EXPECT_FALSE(parseLogLine(line)) << line;
}
