// The log's output (host/src/base/LogOutput.h): synchronous before the writer
// thread starts; after, a bounded queue that never makes a caller wait for a
// blocked output, drops and counts what does not fit, and reports the drops
// once the output takes lines again. Driven through a pipe this test reads (or
// leaves unread, like a stuck journald).

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "base/LogOutput.h"
#include "WaitUntil.h"

using protohost::host::LogOutput;
using namespace std::chrono_literals;

namespace {

/// A pipe whose write end is the output; its buffer is one page, so it fills after a few lines.
struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() {
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    ::fcntl(fds[1], F_SETPIPE_SZ, 4096);
  }
  ~Pipe() {
    if (fds[0] >= 0) ::close(fds[0]);
  }
  int writeEnd() const { return fds[1]; }  // owned by the LogOutput it is given to
  /// Fills the pipe with '#' until a write would block: the next writer blocks.
  void fill() {
    const int flags = ::fcntl(fds[1], F_GETFL);
    ::fcntl(fds[1], F_SETFL, flags | O_NONBLOCK);
    const std::string junk(512, '#');
    while (::write(fds[1], junk.data(), junk.size()) > 0) {
    }
    ::fcntl(fds[1], F_SETFL, flags);
  }
  /// Reads what is in the pipe now (without waiting).
  std::string readAvailable() {
    std::string out;
    char buf[65536];
    pollfd p{fds[0], POLLIN, 0};
    while (::poll(&p, 1, 0) > 0 && (p.revents & POLLIN)) {
      ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }
  /// Reads until @p text has arrived or @p timeout passed; returns all read.
  std::string readUntil(const std::string& text, std::chrono::milliseconds timeout) {
    std::string out;
    protohost::testsupport::waitUntil(
        [&] {
          out += readAvailable();
          return out.find(text) != std::string::npos;
        },
        timeout);
    return out;
  }
};

std::string report(std::uint64_t n) { return "DROPPED " + std::to_string(n) + "\n"; }

std::string line(int i) { return "line " + std::to_string(i) + " " + std::string(90, 'x') + "\n"; }

}  // namespace

TEST(LogOutput, WritesAtOnceBeforeTheWriterStarts) {
  Pipe pipe;
  LogOutput out(1000, report);
  out.setFd(pipe.writeEnd());
  out.write("first\n");
  EXPECT_EQ(pipe.readAvailable(), "first\n");  // no thread involved: it is there already
  EXPECT_TRUE(out.flush(0ms));
  EXPECT_EQ(out.droppedLines(), 0u);
}

TEST(LogOutput, BlockedOutputDropsWhatDoesNotFitAndReportsItOnceWhenItFlowsAgain) {
  Pipe pipe;
  constexpr std::size_t kCapacity = 1000;  // about ten lines
  LogOutput out(kCapacity, report);
  out.setFd(pipe.writeEnd());
  out.startWriter();
  pipe.fill();
  // 200 lines of ~100 bytes into a full pipe: the queue (1000 bytes) holds
  // about ten. Every write returns at once (a blocking one would hang here).
  const auto begin = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; ++i) out.write(line(i));
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 1s);
  const std::uint64_t dropped = out.droppedLines();
  EXPECT_GE(dropped, 180u);
  EXPECT_LT(dropped, 195u);
  EXPECT_FALSE(out.flush(50ms)) << "flushed although nobody reads the pipe";

  // The whole report line: a pipe read may end inside it ("DROPPED 1" + "90\n").
  const std::string got = pipe.readUntil(report(dropped), 5s);
  ASSERT_NE(got.find("DROPPED " + std::to_string(dropped) + "\n"), std::string::npos) << got;
  // What was written came whole and in order (no line cut, none twice), and the report comes after it.
  std::vector<int> ids;
  std::size_t pos = 0;
  while ((pos = got.find("line ", pos)) != std::string::npos) {
    ids.push_back(std::stoi(got.substr(pos + 5)));
    const std::size_t end = got.find('\n', pos);
    ASSERT_NE(end, std::string::npos);
    EXPECT_EQ(got.substr(pos, end + 1 - pos), line(ids.back()));
    pos = end;
  }
  // The first lines got through, the rest were lost: the report stands where they were.
  ASSERT_FALSE(ids.empty());
  for (std::size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i], static_cast<int>(i));
  EXPECT_EQ(ids.size() + dropped, 200u);
  EXPECT_GT(got.find("DROPPED"), got.rfind("line "));
  EXPECT_EQ(got.find("DROPPED"), got.rfind("DROPPED")) << "reported more than once";

  // Flowing again: nothing more is dropped, nothing is reported again.
  EXPECT_TRUE(out.flush(5s));
  for (int i = 200; i < 205; ++i) out.write(line(i));
  EXPECT_TRUE(out.flush(5s));
  const std::string later = pipe.readAvailable();
  EXPECT_EQ(later, line(200) + line(201) + line(202) + line(203) + line(204));
  EXPECT_EQ(out.droppedLines(), dropped);
}

TEST(LogOutput, LinesBeforeAnFdSwitchGoToTheOldFdAndTheRestToTheNewOne) {
  Pipe first, second;
  LogOutput out(100000, report);
  out.setFd(first.writeEnd());
  out.startWriter();
  out.write("a\n");
  out.write("b\n");
  out.setFd(second.writeEnd());  // closes first's write end once a and b are out
  out.write("c\n");
  ASSERT_TRUE(out.flush(5s));
  EXPECT_EQ(first.readUntil("b\n", 5s), "a\nb\n");
  EXPECT_EQ(second.readUntil("c\n", 5s), "c\n");
  char byte;
  EXPECT_EQ(::read(first.fds[0], &byte, 1), 0) << "the old fd was not closed";
}
