// StopDeadline (host/src/ops/StopDeadline.h) and the decision it leaves to
// Server::freezeStop: a stop that finished as the deadline passed does not end
// the process; one that did not ends it with the exit code and a log line.

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <thread>

#include "config/HostConfig.h"
#include "Server.h"
#include "ops/StopDeadline.h"

namespace protohost::host {
namespace {

using namespace std::chrono_literals;

TEST(StopDeadlineDeathTest, EndsTheProcessWithItsExitCodeAndSaysWhatTheStopWaitsFor) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        StopDeadline deadline(1ms, [] { return std::optional<std::string>("step x did not finish"); }, 70);
        std::this_thread::sleep_for(10s);
      },
      ::testing::ExitedWithCode(70), "step x did not finish within 1 ms of the stop request; exiting with 70");
}

// The deadline passed, but the stop finished before the deadline decided
// (describe says so): the process goes on and the deadline is destroyed normally.
TEST(StopDeadline, DoesNothingWhenTheStopFinishedAsTheDeadlinePassed) {
  std::promise<void> asked;
  {
    StopDeadline deadline(1ms, [&] {
      asked.set_value();
      return std::optional<std::string>();
    }, 70);
    ASSERT_EQ(asked.get_future().wait_for(5s), std::future_status::ready);
  }
  SUCCEED() << "still running";
}

// Server::freezeStop is that decision: once stop() has finished it reports
// nothing to wait for (before, it described the last step, and the deadline
// ended a process whose stop had finished with 70).
TEST(StopDeadline, ServerReportsNothingToWaitForOnceStopFinished) {
  HostConfig config;
  config.threads = 2;
  Server server(config);
  server.load();
  server.start();
  server.stop(std::chrono::milliseconds(10));
  EXPECT_EQ(server.freezeStop(), std::nullopt);
}

}  // namespace
}  // namespace protohost::host
