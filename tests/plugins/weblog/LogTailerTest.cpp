#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "LogTailer.h"
#include "WeblogTestSupport.h"

using protohost::plugins::weblog::LogTailer;
using weblogtest::appendFile;
using weblogtest::TempDir;
using weblogtest::Writer;
using Lines = std::vector<std::string>;

namespace {

void append(Lines& to, const Lines& from) { to.insert(to.end(), from.begin(), from.end()); }

Lines numbered(int from, int to) {
  Lines v;
  for (int i = from; i < to; ++i) v.push_back("line " + std::to_string(i));
  return v;
}

std::string asText(const Lines& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

}  // namespace

TEST(LogTailer, StartsAtTheEndAndReturnsAppendedLines) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  appendFile(log, "old 1\nold 2\n");
  LogTailer t(log);
  t.start();
  EXPECT_TRUE(t.isOpen());
  EXPECT_TRUE(t.poll().empty());
  appendFile(log, "new 1\nnew 2\n");
  EXPECT_EQ(t.poll(), (Lines{"new 1", "new 2"}));
  EXPECT_TRUE(t.poll().empty());
  appendFile(log, "new 3\r\n");
  EXPECT_EQ(t.poll(), (Lines{"new 3\r"}));  // the parser drops the '\r'
  EXPECT_EQ(t.stats().linesRead, 3u);
}

TEST(LogTailer, StartAtBeginningReadsEverything) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  appendFile(log, "a\nb\n");
  LogTailer t(log);
  t.start(LogTailer::StartAt::Beginning);
  EXPECT_EQ(t.poll(), (Lines{"a", "b"}));
}

TEST(LogTailer, UnterminatedLineAtStartIsSkippedToItsEnd) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  appendFile(log, "old\nhalf a li");
  LogTailer t(log);
  t.start();
  appendFile(log, "ne\nnew\n");
  EXPECT_EQ(t.poll(), (Lines{"new"}));
  EXPECT_EQ(t.stats().longLinesSkipped, 0u);
}

TEST(LogTailer, PartialLastLineIsHeldUntilItsNewline) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  appendFile(log, "");
  LogTailer t(log);
  t.start();
  appendFile(log, "first\nsec");
  EXPECT_EQ(t.poll(), (Lines{"first"}));
  EXPECT_EQ(t.bufferedBytes(), 3u);
  appendFile(log, "ond");
  EXPECT_TRUE(t.poll().empty());
  appendFile(log, "\nthird\n");
  EXPECT_EQ(t.poll(), (Lines{"second", "third"}));
  EXPECT_EQ(t.bufferedBytes(), 0u);
}

TEST(LogTailer, MissingAtStartIsWaitedForAndReadFromItsStart) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  std::vector<std::string> notices;
  LogTailer t(log, {}, [&](std::string_view m) { notices.emplace_back(m); });
  t.start();
  EXPECT_FALSE(t.isOpen());
  EXPECT_TRUE(t.poll().empty());
  EXPECT_TRUE(t.poll().empty());
  ASSERT_EQ(notices.size(), 1u);  // "waiting for" once, not per poll
  EXPECT_NE(notices[0].find("waiting for"), std::string::npos);
  appendFile(log, "one\ntwo\n");
  EXPECT_EQ(t.poll(), (Lines{"one", "two"}));
  EXPECT_TRUE(t.isOpen());
}

TEST(LogTailer, MissingDirectoryIsWaitedForToo) {
  TempDir dir;
  const std::string log = dir.file("logs/access.log");
  LogTailer t(log);
  t.start();
  EXPECT_TRUE(t.poll().empty());
  ASSERT_EQ(::mkdir(dir.file("logs").c_str(), 0755), 0);
  appendFile(log, "x\n");
  EXPECT_EQ(t.poll(), (Lines{"x"}));
}

TEST(LogTailer, RotationByRenameFinishesTheOldFileFirst) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  Lines got;
  auto server = std::make_unique<Writer>(log);
  LogTailer t(log);
  t.start();
  server->write(asText(numbered(0, 3)));
  append(got, t.poll());

  // logrotate renames; the server keeps writing to the old file until it reopens.
  ASSERT_EQ(std::rename(log.c_str(), dir.file("access.log.1").c_str()), 0);
  server->write(asText(numbered(3, 5)));
  append(got, t.poll());  // path missing: the open (old) file is still followed
  server->write(asText(numbered(5, 7)));
  // The server reopens: a new file at the path. Lines 5-6 are still unread in the old one.
  server = std::make_unique<Writer>(log);
  server->write(asText(numbered(7, 9)));
  append(got, t.poll());
  server->write(asText(numbered(9, 10)));
  append(got, t.poll());
  EXPECT_EQ(got, numbered(0, 10));
  EXPECT_EQ(t.stats().rotations, 1u);
}

TEST(LogTailer, RotationWithLateWritesToTheOldFileBetweenPolls) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  Writer old(log);
  LogTailer t(log);
  t.start();
  old.write("a\n");
  EXPECT_EQ(t.poll(), (Lines{"a"}));
  ASSERT_EQ(std::rename(log.c_str(), dir.file("access.log.1").c_str()), 0);
  appendFile(log, "c\n");  // the new file appears...
  old.write("b\n");        // ...while the old one still gets a line
  EXPECT_EQ(t.poll(), (Lines{"b", "c"}));
}

TEST(LogTailer, CopyTruncateRestartsAtTheBeginning) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  std::vector<std::string> notices;
  LogTailer t(log, {}, [&](std::string_view m) { notices.emplace_back(m); });
  appendFile(log, "");
  t.start();
  appendFile(log, "line 1 is long enough\nline 2 is long enough\n");
  EXPECT_EQ(t.poll(), (Lines{"line 1 is long enough", "line 2 is long enough"}));
  // copytruncate: the content is copied elsewhere and the file truncated in place.
  ASSERT_EQ(::truncate(log.c_str(), 0), 0);
  appendFile(log, "after 1\n");
  EXPECT_EQ(t.poll(), (Lines{"after 1"}));
  appendFile(log, "after 2\n");
  EXPECT_EQ(t.poll(), (Lines{"after 2"}));
  EXPECT_EQ(t.stats().truncations, 1u);
  EXPECT_EQ(t.stats().rotations, 0u);
  bool noted = false;
  for (const auto& n : notices) noted = noted || n.find("truncated") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST(LogTailer, DeletedAndRecreatedIsFollowedByName) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  auto server = std::make_unique<Writer>(log);
  LogTailer t(log);
  t.start();
  server->write("1\n");
  EXPECT_EQ(t.poll(), (Lines{"1"}));
  ASSERT_EQ(::unlink(log.c_str()), 0);
  server->write("2\n");  // still reaches the deleted file through the open descriptor
  EXPECT_EQ(t.poll(), (Lines{"2"}));
  EXPECT_TRUE(t.poll().empty());
  server->write("3\n");
  server = std::make_unique<Writer>(log);  // recreated
  server->write("4\n");
  EXPECT_EQ(t.poll(), (Lines{"3", "4"}));
  server->write("5\n");
  EXPECT_EQ(t.poll(), (Lines{"5"}));
}

TEST(LogTailer, OverlongLinesAreSkippedAndCounted) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  appendFile(log, "");
  LogTailer::Options o;
  o.maxLineBytes = 1000;
  LogTailer t(log, o);
  t.start();
  appendFile(log, "short\n" + std::string(1001, 'x') + "\n" + std::string(1000, 'y') + "\nafter\n");
  EXPECT_EQ(t.poll(), (Lines{"short", std::string(1000, 'y'), "after"}));
  EXPECT_EQ(t.stats().longLinesSkipped, 1u);

  // An overlong line arriving in pieces, over several polls.
  appendFile(log, std::string(600, 'z'));
  EXPECT_TRUE(t.poll().empty());
  appendFile(log, std::string(600, 'z'));
  EXPECT_TRUE(t.poll().empty());
  EXPECT_EQ(t.bufferedBytes(), 0u);  // not buffered past the bound
  appendFile(log, std::string(600, 'z'));
  EXPECT_TRUE(t.poll().empty());
  appendFile(log, "zz\nnext\n");
  EXPECT_EQ(t.poll(), (Lines{"next"}));
  EXPECT_EQ(t.stats().longLinesSkipped, 2u);
}

TEST(LogTailer, FiveMegabyteLineIsSkippedThenFollowingContinues) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  appendFile(log, "");
  LogTailer t(log);  // defaults: 64 KiB lines, 4 MiB per poll
  t.start();
  appendFile(log, std::string(5 * 1024 * 1024, 'A') + "\nnormal\n");
  Lines got;
  for (int i = 0; i < 10 && got.empty(); ++i) append(got, t.poll());  // the budget spreads it over polls
  EXPECT_EQ(got, (Lines{"normal"}));
  EXPECT_EQ(t.stats().longLinesSkipped, 1u);
  EXPECT_LE(t.bufferedBytes(), 64u * 1024);
}

TEST(LogTailer, ReadBudgetSpreadsABacklogOverPollsWithoutLoss) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  appendFile(log, "");
  LogTailer::Options o;
  o.maxBytesPerPoll = 7;
  LogTailer t(log, o);
  t.start();
  appendFile(log, asText(numbered(0, 50)));
  Lines got;
  for (int i = 0; i < 1000 && got.size() < 50; ++i) append(got, t.poll());
  EXPECT_EQ(got, numbered(0, 50));
}

TEST(LogTailer, RotationWhileTheBudgetIsSpentLosesNothing) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  auto server = std::make_unique<Writer>(log);
  LogTailer::Options o;
  o.maxBytesPerPoll = 10;
  LogTailer t(log, o);
  t.start();
  server->write(asText(numbered(0, 20)));
  ASSERT_EQ(std::rename(log.c_str(), dir.file("access.log.1").c_str()), 0);
  server = std::make_unique<Writer>(log);
  server->write(asText(numbered(20, 40)));
  Lines got;
  for (int i = 0; i < 1000 && got.size() < 40; ++i) append(got, t.poll());
  EXPECT_EQ(got, numbered(0, 40));
}

TEST(LogTailer, EveryEventInOneRunDeliversEachLineExactlyOnceInOrder) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  const std::string rotated = dir.file("access.log.1");
  int n = 0;
  auto lines = [&](int count) {
    std::string s = asText(numbered(n, n + count));
    n += count;
    return s;
  };
  Lines got;
  LogTailer t(log);
  t.start();  // missing at start
  append(got, t.poll());
  auto server = std::make_unique<Writer>(log);
  server->write(lines(3));
  append(got, t.poll());
  // partial line
  std::string next = lines(1);
  server->write(next.substr(0, 4));
  append(got, t.poll());
  server->write(next.substr(4));
  append(got, t.poll());
  // rename rotation with late writes
  ASSERT_EQ(std::rename(log.c_str(), rotated.c_str()), 0);
  server->write(lines(2));
  append(got, t.poll());
  server->write(lines(2));
  server = std::make_unique<Writer>(log);
  server->write(lines(2));
  append(got, t.poll());
  // copytruncate
  server->write(lines(1));
  append(got, t.poll());
  ASSERT_EQ(::truncate(log.c_str(), 0), 0);
  server->write(lines(2));
  append(got, t.poll());
  // delete and recreate
  ASSERT_EQ(::unlink(log.c_str()), 0);
  server->write(lines(1));
  append(got, t.poll());
  server = std::make_unique<Writer>(log);
  server->write(lines(3));
  append(got, t.poll());
  append(got, t.poll());
  EXPECT_EQ(got, numbered(0, n));
}

TEST(LogTailer, CloseReleasesTheFile) {
  TempDir dir;
  const std::string log = dir.file("access.log");
  appendFile(log, "x\n");
  LogTailer t(log);
  t.start();
  EXPECT_TRUE(t.isOpen());
  t.close();
  EXPECT_FALSE(t.isOpen());
}
