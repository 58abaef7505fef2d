// LineProtocol framing (sdk/include/protohost/LineProtocol.h), every input fed
// in every chunk size from 1 byte to the whole input at once.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "ChunkFeeder.h"
#include "protohost/LineProtocol.h"
#include "protohost/testing/MemoryTransport.h"

using protohost::LineProtocol;
using protohost::LogLevel;
using protohost::testing::MemoryTransport;
using namespace std::chrono_literals;

namespace {

using Lines = std::vector<std::string>;

class RecordingLines : public LineProtocol {
 public:
  using LineProtocol::LineProtocol;

  void lineReceived(std::string_view line) override {
    lines.emplace_back(line);
    if (closeAfterLines != 0 && lines.size() == closeAfterLines) transport().loseConnection();
  }
  void lineLengthExceeded(std::size_t length) override {
    exceeded.push_back(length);
    if (closeOnOverflow) LineProtocol::lineLengthExceeded(length);
  }
  void lineTimedOut() override {
    ++timeouts;
    LineProtocol::lineTimedOut();
  }

  Lines lines;
  std::vector<std::size_t> exceeded;
  std::size_t closeAfterLines = 0;  // 0: never close from lineReceived
  bool closeOnOverflow = true;      // false: do not call the default (which closes)
  int timeouts = 0;
};

struct Expect {
  Lines lines;
  bool closed = false;
  std::size_t exceeded = 0;       // how many lineLengthExceeded calls
  std::size_t buffered = 0;       // bufferedBytes() at the end (when not overflowed)
};

// Feeds @p input in every chunk size 1..size+1 and checks the outcome of each run.
void expectInEveryChunkSize(const std::string& input, const std::string& delimiter, std::size_t maxLine,
                            const Expect& expect, std::size_t closeAfterLines = 0) {
  std::size_t runs = chunkfeeder::forEveryChunkSize(
      input,
      [&] {
        auto p = std::make_unique<RecordingLines>(delimiter, maxLine);
        p->closeAfterLines = closeAfterLines;
        return p;
      },
      [&](std::size_t chunk, RecordingLines& p, MemoryTransport& t) {
        SCOPED_TRACE("chunk size " + std::to_string(chunk));
        EXPECT_EQ(p.lines, expect.lines);
        EXPECT_EQ(t.closed(), expect.closed);
        EXPECT_FALSE(t.aborted());
        EXPECT_EQ(p.exceeded.size(), expect.exceeded);
        if (expect.exceeded == 0) {
          EXPECT_EQ(p.bufferedBytes(), expect.buffered);
        }
        for (std::size_t length : p.exceeded) EXPECT_GT(length, maxLine);
      });
  EXPECT_EQ(runs, input.size() + 1);
}

}  // namespace

TEST(LineProtocol, LfLinesInEveryChunkSize) {
  expectInEveryChunkSize("one\ntwo\nthree\n", "\n", 100, {{"one", "two", "three"}});
}

TEST(LineProtocol, PartialLineWaitsForItsDelimiter) {
  expectInEveryChunkSize("one\ntw", "\n", 100, {{"one"}, false, 0, 2});
}

TEST(LineProtocol, CrlfLinesHaveTheirCrStrippedWithLfDelimiter) {
  expectInEveryChunkSize("one\r\ntwo\r\n\r\nthree\n", "\n", 100, {{"one", "two", "", "three"}});
}

TEST(LineProtocol, OnlyOneTrailingCrIsStrippedAndInnerCrsStay) {
  expectInEveryChunkSize("a\r\r\nb\rc\n\r\n", "\n", 100, {{"a\r", "b\rc", ""}});
}

TEST(LineProtocol, EmptyLines) {
  expectInEveryChunkSize("\n\n\nx\n\n", "\n", 100, {{"", "", "", "x", ""}});
}

TEST(LineProtocol, CrlfDelimiterSplitAcrossChunks) {
  // With "\r\n" as the delimiter a bare LF is data, and a CR before CRLF stays in the line.
  expectInEveryChunkSize("one\r\ntwo\r\n\r\nx\ny\r\na\r\r\n", "\r\n", 100, {{"one", "two", "", "x\ny", "a\r"}});
}

TEST(LineProtocol, PipePipeDelimiterSplitAcrossChunks) {
  expectInEveryChunkSize("a||b|c||||d||e|", "||", 100, {{"a", "b|c", "", "d"}, false, 0, 2});
}

TEST(LineProtocol, ThreeByteSelfOverlappingDelimiter) {
  // "aab" inside "xaaab" starts at index 2: the line is "xa", whatever the chunking.
  expectInEveryChunkSize("xaaabaabqaab", "aab", 100, {{"xa", "", "q"}});
}

TEST(LineProtocol, EmptyDelimiterMeansLf) {
  RecordingLines p("", 100);
  EXPECT_EQ(p.delimiter(), "\n");
}

TEST(LineProtocol, LineExactlyAtTheLimitIsAccepted) {
  expectInEveryChunkSize("12345\nabcde\n", "\n", 5, {{"12345", "abcde"}});
  expectInEveryChunkSize("12345||abcde||", "||", 5, {{"12345", "abcde"}});
  expectInEveryChunkSize("12345\r\nabcde\r\n", "\r\n", 5, {{"12345", "abcde"}});
}

TEST(LineProtocol, PartialLineExactlyAtTheLimitStaysBuffered) {
  expectInEveryChunkSize("12345", "\n", 5, {{}, false, 0, 5});
}

TEST(LineProtocol, LineOneOverTheLimitClosesOnceAndDeliversNothingMore) {
  expectInEveryChunkSize("ok\n123456\nlater\nmore\n", "\n", 5, {{"ok"}, true, 1});
  expectInEveryChunkSize("ok||123456||later||", "||", 5, {{"ok"}, true, 1});
  expectInEveryChunkSize("ok\r\n123456\r\nlater\r\n", "\r\n", 5, {{"ok"}, true, 1});
}

TEST(LineProtocol, UnterminatedLineOverTheLimitIsCaughtWithoutItsDelimiter) {
  expectInEveryChunkSize("123456", "\n", 5, {{}, true, 1});
  expectInEveryChunkSize("1234567890", "||", 5, {{}, true, 1});
}

TEST(LineProtocol, DefaultOverflowLogsAWarningAndClosesGracefully) {
  MemoryTransport t;
  RecordingLines p("\n", 5);
  t.connect(p);
  p.dataReceived("123456\n");
  ASSERT_EQ(p.exceeded.size(), 1u);
  EXPECT_TRUE(t.closed());
  EXPECT_FALSE(t.aborted());  // loseConnection, not abortConnection: written output is flushed
  ASSERT_EQ(t.memoryLogger().lines.size(), 1u);
  EXPECT_EQ(t.memoryLogger().lines[0].level, LogLevel::Warning);
  EXPECT_EQ(t.memoryLogger().lines[0].text.rfind("line longer than 5 bytes (", 0), 0u)
      << t.memoryLogger().lines[0].text;
  EXPECT_EQ(p.bufferedBytes(), 0u);
}

TEST(LineProtocol, FramingStopsAfterOverflowEvenWhenTheHookDoesNotClose) {
  MemoryTransport t;
  RecordingLines p("\n", 5);
  p.closeOnOverflow = false;
  t.connect(p);
  t.feed(p, "a\n123456789\nb\n", 3);
  t.feed(p, "c\n");
  EXPECT_EQ(p.lines, Lines{"a"});
  EXPECT_EQ(p.exceeded.size(), 1u);
  EXPECT_FALSE(t.closed());
}

TEST(LineProtocol, CrlfLineExactlyAtTheLimitIsAcceptedWithLfDelimiter) {
  // The CR of a CRLF line is part of the line ending, not of the line: a CRLF
  // client must get the same maxLineLength as an LF client.
  expectInEveryChunkSize("12345\r\nabcde\r\n", "\n", 5, {{"12345", "abcde"}});
  expectInEveryChunkSize("1234\r\r\n", "\n", 5, {{"1234\r"}});
}

TEST(LineProtocol, CrInsideALineStillCountsTowardsTheLimit) {
  // Only a CR that ends the line is part of the line ending.
  expectInEveryChunkSize("12345\rx\n", "\n", 5, {{}, true, 1});
  expectInEveryChunkSize("12345\r\r\n", "\n", 5, {{}, true, 1});
}

TEST(LineProtocol, LoseConnectionInsideLineReceivedStopsFurtherLines) {
  expectInEveryChunkSize("a\nb\nc\nd\n", "\n", 100, {{"a", "b"}, true}, 2);
  expectInEveryChunkSize("a||b||c||", "||", 100, {{"a"}, true}, 1);
}

TEST(LineProtocol, NoLinesAfterCloseEvenWhenDataStillArrives) {
  // The host may still hand over bytes that were already read; none becomes a line.
  MemoryTransport t;
  RecordingLines p("\n", 100);
  p.closeAfterLines = 1;
  t.connect(p);
  p.dataReceived("first\nsecond\n");
  p.dataReceived("third\n");
  EXPECT_EQ(p.lines, Lines{"first"});
  EXPECT_TRUE(t.closed());
}

TEST(LineProtocol, SetMaxLineLengthAppliesToLaterInput) {
  MemoryTransport t;
  RecordingLines p("\n", 100);
  t.connect(p);
  t.feed(p, "123456\n");
  p.setMaxLineLength(5);
  EXPECT_EQ(p.maxLineLength(), 5u);
  t.feed(p, "123456\n");
  EXPECT_EQ(p.lines, Lines{"123456"});
  EXPECT_EQ(p.exceeded.size(), 1u);
}

// ---- a pause between two lines of one chunk (Twisted's LineReceiver stops too) ----

namespace {

// Pauses reading after every line, as a protocol whose answer is not ready yet would.
class PausingLines : public RecordingLines {
 public:
  using RecordingLines::RecordingLines;
  void lineReceived(std::string_view line) override {
    RecordingLines::lineReceived(line);
    transport().pauseReading();
  }
};

// Resumes reading and lets the transport deliver what it and the protocol held.
void resume(MemoryTransport& t) {
  t.resumeReading();
  t.manualReactor().runPending();
}

// Feeds @p input in every chunk size; each resume must deliver exactly one more
// line, in order (held lines are not lost, and none comes while paused).
void expectOneLinePerResumeInEveryChunkSize(const std::string& input, const std::string& delimiter,
                                            const Lines& expected, std::size_t bufferedAtEnd) {
  chunkfeeder::forEveryChunkSize(
      input, [&] { return std::make_unique<PausingLines>(delimiter, 100); },
      [&](std::size_t chunk, PausingLines& p, MemoryTransport& t) {
        SCOPED_TRACE("chunk size " + std::to_string(chunk));
        for (std::size_t resumes = 0; resumes <= expected.size(); ++resumes) {
          ASSERT_EQ(p.lines.size(), std::min(resumes + 1, expected.size())) << "after " << resumes << " resumes";
          resume(t);
        }
        EXPECT_EQ(p.lines, expected);
        EXPECT_EQ(p.bufferedBytes(), bufferedAtEnd);
        EXPECT_FALSE(t.closed());
      });
}

}  // namespace

TEST(LineProtocolPause, NoLineIsDeliveredWhilePausedAndHeldLinesFollowInOrder) {
  expectOneLinePerResumeInEveryChunkSize("one\ntwo\r\n\nthree\nfour", "\n", {"one", "two", "", "three"}, 4);
}

TEST(LineProtocolPause, MultiByteDelimiterSplitAroundThePause) {
  expectOneLinePerResumeInEveryChunkSize("a||b|c||||d||e|", "||", {"a", "b|c", "", "d"}, 2);
  expectOneLinePerResumeInEveryChunkSize("x\r\ny\r\n\r\nz\r\n", "\r\n", {"x", "y", "", "z"}, 0);
}

TEST(LineProtocolPause, OneReadOfManyNewlinesDeliversOneLinePerResume) {
  // One 64 KiB read of "\n" used to be 65,536 fibonacci answers at once.
  MemoryTransport t;
  PausingLines p("\n", 100);
  t.connect(p);
  t.feed(p, std::string(64 * 1024, '\n'));
  EXPECT_EQ(p.lines.size(), 1u);
  EXPECT_EQ(p.bufferedBytes(), 64u * 1024 - 1);
  EXPECT_TRUE(t.resumeRequested());
  for (int i = 0; i < 3; ++i) {
    resume(t);
  }
  EXPECT_EQ(p.lines.size(), 4u);
  t.feed(p, "last\n");  // arrives behind the held lines
  while (p.lines.size() < 64 * 1024 + 1 && !p.lines.empty()) {
    const std::size_t before = p.lines.size();
    resume(t);
    ASSERT_EQ(p.lines.size(), before + 1);
  }
  EXPECT_EQ(p.lines.back(), "last");
  EXPECT_EQ(p.bufferedBytes(), 0u);
}

TEST(LineProtocolPause, APauseFromOutsideHoldsTheRestOfTheChunk) {
  // The transport reports a pause that lineReceived did not make (as the host
  // does when output backs up): the next line waits for whenReadingResumed.
  MemoryTransport t;
  RecordingLines p("\n", 100);
  t.connect(p);
  t.feed(p, "a\n");
  t.pauseReading();
  p.dataReceived("b\nc\n");  // handed over while paused (input already read)
  EXPECT_EQ(p.lines, Lines{"a"});
  EXPECT_EQ(p.bufferedBytes(), 4u);
  resume(t);
  EXPECT_EQ(p.lines, (Lines{"a", "b", "c"}));
  EXPECT_FALSE(t.resumeRequested());
}

TEST(LineProtocolPause, HeldLinesAreDroppedOnceTheConnectionCloses) {
  MemoryTransport t;
  PausingLines p("\n", 100);
  t.connect(p);
  t.feed(p, "a\nb\nc\n");
  t.loseConnection();
  resume(t);
  EXPECT_EQ(p.lines, Lines{"a"});
}

// A transport that reads the EOF while lines are held (the host did, when it
// read before it fired the resume): the default readEnded closed at once and
// the held lines were never delivered. Input handed over chunk by chunk, as
// such a transport would, in every chunk size.
TEST(LineProtocolPause, AnEofWhileLinesAreHeldWaitsForThemInEveryChunkSize) {
  const std::string input = "one\ntwo\r\nthree\n";
  for (std::size_t chunk = 1; chunk <= input.size(); ++chunk) {
    SCOPED_TRACE("chunk size " + std::to_string(chunk));
    MemoryTransport t;
    PausingLines p("\n", 100);
    t.connect(p);
    for (std::size_t at = 0; at < input.size(); at += chunk) p.dataReceived(std::string_view(input).substr(at, chunk));
    p.readEnded();
    EXPECT_FALSE(t.closed()) << "closed with lines held";
    for (int resumes = 0; resumes < 3 && !t.closed(); ++resumes) resume(t);
    EXPECT_EQ(p.lines, (Lines{"one", "two", "three"}));
    EXPECT_TRUE(t.closed()) << "the EOF is acted on once the held lines are delivered";
    EXPECT_EQ(p.bufferedBytes(), 0u);
  }
}

// The same through the test kit, which (like the host) holds the EOF behind
// the input it holds: every line is delivered, then the connection closes.
TEST(LineProtocolPause, AnEofFedBehindHeldInputComesAfterEveryLine) {
  chunkfeeder::forEveryChunkSize(
      "a\nb\nc\n", [] { return std::make_unique<PausingLines>("\n", 100); },
      [](std::size_t chunk, PausingLines& p, MemoryTransport& t) {
        SCOPED_TRACE("chunk size " + std::to_string(chunk));
        t.feedEof(p);
        EXPECT_FALSE(t.closed());
        for (int resumes = 0; resumes < 4 && !t.closed(); ++resumes) resume(t);
        EXPECT_EQ(p.lines, (Lines{"a", "b", "c"}));
        EXPECT_TRUE(t.closed());
      });
}

// Input that arrives while lines wait for a resume used to be handed over
// first, so each pause/resume cycle appended a chunk behind the held lines
// and took one line off: what a protocol held grew towards the whole stream.
// Now (as in the host) the resume runs first and the input waits.
TEST(LineProtocolPause, HeldInputStaysWithinOneChunkAcrossPauses) {
  std::string input;
  for (int i = 0; i < 100; ++i) input += "ab\n";
  chunkfeeder::forEveryChunkSize(
      input, [] { return std::make_unique<PausingLines>("\n", 100); },
      [&](std::size_t chunk, PausingLines& p, MemoryTransport& t) {
        SCOPED_TRACE("chunk size " + std::to_string(chunk));
        std::size_t most = p.bufferedBytes();
        for (int resumes = 0; resumes < 100 && p.lines.size() < 100; ++resumes) {
          resume(t);
          most = std::max(most, p.bufferedBytes());
        }
        EXPECT_EQ(p.lines.size(), 100u);
        EXPECT_LE(most, chunk + 2) << "held by the protocol at most: one chunk and a partial line";
      },
      64);
}

// A pause the transport reports for backed-up output (the host's
// pause_reading_above; the kit's setPauseThreshold) holds the lines until the
// output drains to the low mark.
TEST(LineProtocolPause, OutputPastThePauseThresholdHoldsLinesUntilItDrains) {
  MemoryTransport t;
  t.setPauseThreshold(100, 50);
  struct Answering : RecordingLines {
    using RecordingLines::RecordingLines;
    void lineReceived(std::string_view line) override {
      RecordingLines::lineReceived(line);
      auto& mt = static_cast<MemoryTransport&>(transport());
      mt.setPendingBytes(mt.pendingBytes() + 60);
    }
  } p("\n", 100);
  t.connect(p);
  t.feed(p, "a\nb\nc\nd\n");
  EXPECT_EQ(p.lines, (Lines{"a", "b"})) << "120 bytes pending after the second: paused";
  EXPECT_TRUE(t.readingPaused());
  t.setPendingBytes(60);  // above the low mark: still paused
  t.manualReactor().runPending();
  EXPECT_EQ(p.lines.size(), 2u);
  t.setPendingBytes(50);
  t.manualReactor().runPending();
  EXPECT_EQ(p.lines, (Lines{"a", "b", "c"})) << "50 + 60 pending: paused again";
  t.setPendingBytes(0);
  t.manualReactor().runPending();
  EXPECT_EQ(p.lines, (Lines{"a", "b", "c", "d"}));
}

// ---- line deadline (setLineTimeout), on the transport's manual clock ----

TEST(LineProtocolTimeout, PartialLineTimesOutAfterTheDeadline) {
  MemoryTransport t;
  RecordingLines p("\n", 100);
  p.setLineTimeout(100ms);
  t.connect(p);
  t.feed(p, "ab");
  t.manualReactor().advance(60ms);
  t.feed(p, "c");  // trickling bytes does not move the deadline
  t.manualReactor().advance(39ms);
  EXPECT_FALSE(t.closed());
  t.manualReactor().advance(1ms);
  EXPECT_EQ(p.timeouts, 1);
  EXPECT_TRUE(t.closed());
  EXPECT_TRUE(p.lines.empty());
}

TEST(LineProtocolTimeout, CompleteLinesCancelTheDeadline) {
  MemoryTransport t;
  RecordingLines p("\n", 100);
  p.setLineTimeout(100ms);
  t.connect(p);
  t.feed(p, "ab", 1);
  EXPECT_EQ(t.manualReactor().pendingTimers(), 1u);
  t.feed(p, "c\n");
  EXPECT_EQ(t.manualReactor().pendingTimers(), 0u);
  t.manualReactor().advance(1000ms);
  EXPECT_EQ(p.timeouts, 0);
  EXPECT_FALSE(t.closed());
  EXPECT_EQ(p.lines, Lines{"abc"});
}

TEST(LineProtocolTimeout, ANewPartialLineGetsAFreshDeadline) {
  MemoryTransport t;
  RecordingLines p("\n", 100);
  p.setLineTimeout(100ms);
  t.connect(p);
  t.feed(p, "a");
  t.manualReactor().advance(90ms);
  t.feed(p, "\nb");  // first line done at 90 ms, second starts: deadline 190 ms
  t.manualReactor().advance(99ms);
  EXPECT_FALSE(t.closed());
  EXPECT_EQ(t.manualReactor().pendingTimers(), 1u);
  t.manualReactor().advance(1ms);
  EXPECT_TRUE(t.closed());
  EXPECT_EQ(p.timeouts, 1);
}

TEST(LineProtocolTimeout, NoDeadlineRunsWhileLinesAreHeldByAPause) {
  // The peer is not late while the protocol does not read: the partial line
  // behind the held ones gets its deadline once framing reaches it.
  MemoryTransport t;
  PausingLines p("\n", 100);
  p.setLineTimeout(100ms);
  t.connect(p);
  t.feed(p, "a\nb\nc");
  EXPECT_EQ(t.manualReactor().pendingTimers(), 0u);
  t.manualReactor().advance(1000ms);
  EXPECT_EQ(p.timeouts, 0);
  resume(t);
  EXPECT_EQ(p.lines, (Lines{"a", "b"}));
  EXPECT_EQ(t.manualReactor().pendingTimers(), 0u);  // "c" is still held
  resume(t);
  EXPECT_EQ(t.manualReactor().pendingTimers(), 1u);
  t.manualReactor().advance(100ms);
  EXPECT_EQ(p.timeouts, 1);
  EXPECT_TRUE(t.closed());
}

// ---- raw mode (setRawMode / setLineMode, Twisted's LineReceiver) and sendLine ----

namespace {

// "LEN n" switches to raw mode for an n-byte body, recorded as "[body]" in
// lines; the bytes after the body go back to the lines through setLineMode(extra).
class BodyLines : public RecordingLines {
 public:
  using RecordingLines::RecordingLines;
  void lineReceived(std::string_view line) override {
    RecordingLines::lineReceived(line);
    if (pauseAfterLines) transport().pauseReading();
    if (line.starts_with("LEN ")) {
      remaining = std::stoul(std::string(line.substr(4)));
      body.clear();
      if (remaining == 0) lines.push_back("[]");
      else setRawMode();
    }
  }
  void rawDataReceived(std::string_view data) override {
    ++rawCalls;
    const std::size_t n = std::min(remaining, data.size());
    body.append(data.substr(0, n));
    remaining -= n;
    if (remaining == 0) {
      lines.push_back("[" + body + "]");
      setLineMode(data.substr(n));
    }
  }
  std::size_t remaining = 0;
  std::string body;
  int rawCalls = 0;
  bool pauseAfterLines = false;
};

}  // namespace

TEST(LineProtocolRaw, ABodyBetweenLinesInEveryChunkSize) {
  // The body holds delimiters that are not lines; the line after it comes from
  // the same chunk (setLineMode's extra) whatever the chunking.
  const std::string input = "a\nLEN 6\nx\ny\r\nzb\nLEN 0\nc\nLEN 3\n12";
  chunkfeeder::forEveryChunkSize(
      input, [] { return std::make_unique<BodyLines>("\n", 100); },
      [](std::size_t chunk, BodyLines& p, MemoryTransport& t) {
        SCOPED_TRACE("chunk size " + std::to_string(chunk));
        EXPECT_EQ(p.lines, (Lines{"a", "LEN 6", "[x\ny\r\nz]", "b", "LEN 0", "[]", "c", "LEN 3"}));
        EXPECT_TRUE(p.isRawMode());
        EXPECT_EQ(p.body, "12");
        EXPECT_EQ(p.bufferedBytes(), 0u) << "raw bytes are the subclass's";
        EXPECT_FALSE(t.closed());
      });
}

TEST(LineProtocolRaw, TheRestOfTheSwitchingChunkGoesRawInOneCall) {
  MemoryTransport t;
  BodyLines p("\r\n", 100);
  t.connect(p);
  t.feed(p, "LEN 100\r\nbody\r\nmore");
  EXPECT_EQ(p.rawCalls, 1);
  EXPECT_EQ(p.body, "body\r\nmore");
  t.feed(p, std::string(150, 'x'));  // no line limit in raw mode: 150 > 100
  EXPECT_EQ(p.rawCalls, 2);
  EXPECT_TRUE(p.exceeded.empty());
  EXPECT_EQ(p.lines.back(), "[body\r\nmore" + std::string(90, 'x') + "]");
  EXPECT_FALSE(p.isRawMode());
  EXPECT_EQ(p.bufferedBytes(), 60u) << "the rest: a partial line again, under the limit";
}

TEST(LineProtocolRaw, APartialLineBufferedAtASwitchFromOutsideGoesRawFirst) {
  MemoryTransport t;
  BodyLines p("\n", 100);
  t.connect(p);
  t.feed(p, "par");
  p.remaining = 5;
  p.setRawMode();  // e.g. from a timer
  t.feed(p, "tinext\n");
  EXPECT_EQ(p.lines, (Lines{"[parti]", "next"}));
}

TEST(LineProtocolRaw, SetLineModeFromOutsideFramesItsExtraAtOnce) {
  MemoryTransport t;
  BodyLines p("\n", 100);
  t.connect(p);
  p.setRawMode();
  p.setLineMode("one\ntw");
  EXPECT_EQ(p.lines, Lines{"one"});
  t.feed(p, "o\n");
  EXPECT_EQ(p.lines, (Lines{"one", "two"}));
}

// A pause holds raw bytes too: a lineReceived that pauses and switches to raw
// mode gets the rest of the chunk only after the resume, in every chunk size.
TEST(LineProtocolRaw, SwitchingWhilePausedHoldsTheRawRestUntilTheResume) {
  const std::string input = "a\nLEN 4\nwxyzb\nc\n";
  chunkfeeder::forEveryChunkSize(
      input,
      [] {
        auto p = std::make_unique<BodyLines>("\n", 100);
        p->pauseAfterLines = true;
        return p;
      },
      [](std::size_t chunk, BodyLines& p, MemoryTransport& t) {
        SCOPED_TRACE("chunk size " + std::to_string(chunk));
        EXPECT_EQ(p.lines, Lines{"a"});
        resume(t);
        EXPECT_EQ(p.lines, (Lines{"a", "LEN 4"}));
        EXPECT_EQ(p.rawCalls, 0) << "raw bytes delivered while paused";
        resume(t);  // the body, then "b", which pauses
        EXPECT_EQ(p.lines, (Lines{"a", "LEN 4", "[wxyz]", "b"}));
        resume(t);
        EXPECT_EQ(p.lines, (Lines{"a", "LEN 4", "[wxyz]", "b", "c"}));
        EXPECT_EQ(p.bufferedBytes(), 0u);
      });
}

TEST(LineProtocolRaw, AnEofAfterRawBytesHeldByAPauseWaitsForThem) {
  MemoryTransport t;
  BodyLines p("\n", 100);
  t.connect(p);
  t.pauseReading();
  p.setRawMode();
  p.remaining = 3;
  p.dataReceived("abcz\n");  // handed over while paused
  p.readEnded();
  EXPECT_FALSE(t.closed());
  resume(t);
  EXPECT_EQ(p.lines, (Lines{"[abc]", "z"}));
  EXPECT_TRUE(t.closed());
}

TEST(LineProtocolSendLine, WritesLineAndDelimiterAsOneWrite) {
  MemoryTransport t;
  RecordingLines crlf("\r\n", 100);
  t.connect(crlf);
  crlf.sendLine("HELLO");
  crlf.sendLine("");
  EXPECT_EQ(t.value(), "HELLO\r\n\r\n");
  EXPECT_EQ(t.writeCount(), 2u);
  MemoryTransport lf;
  RecordingLines p;
  lf.connect(p);
  p.sendLine("x");
  EXPECT_EQ(lf.value(), "x\n");
}

// The held buffer drops its delivered prefix: input appended behind held
// lines (a transport that hands it over while paused) did not keep the whole
// stream in memory across many pause/resume cycles.
TEST(LineProtocolPause, HeldStorageStaysBoundedAcrossALongRunOfHeldLines) {
  struct Inspect : PausingLines {
    using PausingLines::PausingLines;
    using LineProtocol::heldStorageBytes;
  };
  MemoryTransport t;
  Inspect p("\n", 100);
  t.connect(p);
  t.feed(p, "first\nab\nab\n");
  std::size_t most = 0;
  for (int i = 0; i < 2000; ++i) {
    p.dataReceived("ab\n");  // one more line behind the held ones
    resume(t);               // one line delivered
    most = std::max(most, p.heldStorageBytes());
  }
  EXPECT_EQ(p.lines.size(), 2001u);
  EXPECT_EQ(p.bufferedBytes(), 6u);
  EXPECT_LE(most, 2 * p.bufferedBytes() + 3) << "the delivered prefix is kept";
}
