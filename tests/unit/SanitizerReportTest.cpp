// The harness's sanitizer-report check (tests/support/SanitizerReport.h,
// ChildProcess.h): a child whose stderr holds a ThreadSanitizer, AddressSanitizer
// or UndefinedBehaviorSanitizer report fails the test that ran it, even when
// the test never looks at its exit status or output. The children here are
// /bin/sh printing such lines, as a host built with a sanitizer would.

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "ChildProcess.h"
#include "SanitizerReport.h"

using protohost::testsupport::ChildProcess;
using protohost::testsupport::findSanitizerReport;
using protohost::testsupport::isSanitizerReportLine;

namespace {

// Runs `sh -c SCRIPT` and destroys it (the destructor does the check); with
// @p waitForExit, after it exited, otherwise while it is still running.
void runShell(const std::string& script, bool waitForExit = true) {
  ChildProcess child(ChildProcess::Options{.argv = {"/bin/sh", "-c", script}});
  if (waitForExit) {
    EXPECT_TRUE(child.waitExit().has_value());
  }
}

}  // namespace

TEST(SanitizerReport, ThreadSanitizerRaceFailsTheTest) {
  EXPECT_NONFATAL_FAILURE(runShell("echo 'listening' >&2; echo '==================' >&2; "
                                   "echo 'WARNING: ThreadSanitizer: data race (pid=42)' >&2; "
                                   "echo '  Write of size 8 at 0x7b04 by thread T1:' >&2; exit 66"),
                          "WARNING: ThreadSanitizer: data race (pid=42)\n  Write of size 8 at 0x7b04 by thread T1:");
}

TEST(SanitizerReport, ReportOfAChildStillRunningAtDestructionFailsTheTest) {
  // The report is printed, then the child goes on until the destructor ends it.
  EXPECT_NONFATAL_FAILURE(
      {
        ChildProcess child(ChildProcess::Options{
            .argv = {"/bin/sh", "-c", "echo 'WARNING: ThreadSanitizer: data race (pid=7)' >&2; exec sleep 60"}});
        EXPECT_TRUE(child.waitForLog("ThreadSanitizer").has_value());
      },
      "WARNING: ThreadSanitizer: data race (pid=7)");
}

TEST(SanitizerReport, AddressAndUndefinedBehaviorSanitizerFailTheTest) {
  EXPECT_NONFATAL_FAILURE(runShell("echo '==1==ERROR: AddressSanitizer: heap-use-after-free on address 0x6' >&2"),
                          "ERROR: AddressSanitizer: heap-use-after-free");
  EXPECT_NONFATAL_FAILURE(runShell("echo 'host/src/X.cpp:12:7: runtime error: signed integer overflow' >&2"),
                          "runtime error: signed integer overflow");
}

TEST(SanitizerReport, OrdinaryOutputPassesAndReportsOnStdoutAreIgnored) {
  // Log text that merely mentions the words is no report.
  runShell("echo 'plugin threw std::runtime_error: bad' >&2; echo 'WARNING: ThreadSanitizer: data race'");
  EXPECT_FALSE(isSanitizerReportLine("[listener=echo] plugin threw std::runtime_error: runtime error: x"));
  EXPECT_TRUE(isSanitizerReportLine("WARNING: ThreadSanitizer: lock-order-inversion (potential deadlock)"));
  EXPECT_TRUE(isSanitizerReportLine("==12==ERROR: LeakSanitizer: detected memory leaks"));
  EXPECT_EQ(findSanitizerReport({"a", "b"}), "");
  EXPECT_EQ(findSanitizerReport({"a", "WARNING: ThreadSanitizer: data race", "  stack"}),
            "WARNING: ThreadSanitizer: data race\n  stack\n");
}

TEST(ChildProcess, DestructorEndsARunningChildWithSigtermFirst) {
  // The shell leaves a file when TERM reaches it and exits (after its current
  // 50 ms sleep); SIGKILL, which it could not see, would come kStopGrace later.
  const std::string marker =
      (std::filesystem::temp_directory_path() / ("protohost-term-" + std::to_string(::getpid()))).string();
  std::filesystem::remove(marker);
  const auto start = std::chrono::steady_clock::now();
  {
    ChildProcess child(ChildProcess::Options{
        .argv = {"/bin/sh", "-c",
                 "trap 'touch " + marker + "; exit 0' TERM; echo ready >&2; while :; do sleep 0.05; done"}});
    ASSERT_TRUE(child.waitForLog("ready").has_value());
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, ChildProcess::kStopGrace);
  EXPECT_TRUE(std::filesystem::exists(marker));
  std::filesystem::remove(marker);
}
