// The worker pool end to end (SDK 1.3 Reactor::deferToThread, issue 10): the
// test-only deferring plugin answers each line from done after work on a
// "ph-worker-N" thread. /metrics counts queued, running, rejected and
// completed work; a full queue is answered at once; a work exception reaches
// done; TERM with work that runs far past the drain bound still exits 0
// within drain_timeout_ms + the stop grace. The real host binary, loopback only.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "HostProcess.h"
#include "ReliabilitySupport.h"
#include "TestClient.h"

namespace protohost::reliability {
namespace {

using namespace std::chrono_literals;
using e2e::HostIni;
using e2e::HostProcess;

double metric(std::uint16_t admin, const std::string& name) {
  return metricValue(scrapeMetrics(admin), name).value_or(-1);
}

TEST(WorkerPoolE2e, DeferredAnswersMetricsQueueFullAndTermWithLongWork) {
  constexpr int kDrainMs = 1000;
  HostProcess host;
  DumpLogOnFailure dump{host};
  HostIni ini(host.linkPlugins({std::string(e2e::kTestPluginDir) + "/deferring.so"}));
  ini.set("worker_threads", "1").set("worker_queue", "1").set("drain_timeout_ms", std::to_string(kDrainMs));
  ini.listener("deferring", "deferring");
  ini.raw(kAdminSection);
  host.startWithConfig(ini.text());
  const std::uint16_t port = host.port("deferring"), admin = host.port("admin");
  const std::vector<std::string> names = host.threadNames();
  EXPECT_NE(std::find(names.begin(), names.end(), "ph-worker-0"), names.end()) << "no ph-worker-0 thread";

  TestClient quick = TestClient::connect(port);
  quick.sendAll("0\n");
  EXPECT_EQ(quick.readLine(), "done 0");
  quick.sendAll("throw\n");
  EXPECT_EQ(quick.readLine(), "error: worker says no");
  EXPECT_EQ(metric(admin, "protohost_worker_completed_total"), 2);

  // One long job takes the only worker, one more waits (queue of 1), the next is refused at once.
  TestClient longWork = TestClient::connect(port);
  longWork.sendAll("60000\n");
  ASSERT_TRUE(testsupport::waitUntil([&] { return metric(admin, "protohost_worker_running") == 1; }, 5000ms));
  TestClient waiting = TestClient::connect(port);
  waiting.sendAll("0\n");
  ASSERT_TRUE(testsupport::waitUntil([&] { return metric(admin, "protohost_worker_queued") == 1; }, 5000ms));
  const auto before = Clock::now();
  quick.sendAll("0\n");
  EXPECT_EQ(quick.readLine(), "refused QueueFull");
  EXPECT_LT(msSince(before), 1000) << "a full queue was not refused at once";
  EXPECT_EQ(metric(admin, "protohost_worker_rejected_total"), 1);
  EXPECT_EQ(metric(admin, "protohost_worker_completed_total"), 2);

  // TERM: the queued job is dropped, the running one is waited for only up to the drain bound.
  const auto term = Clock::now();
  ASSERT_TRUE(host.signal(SIGTERM));
  const std::optional<int> status = host.waitExit(std::chrono::milliseconds(kDrainMs + 5000));
  const long long tookMs = msSince(term);
  ASSERT_TRUE(status.has_value()) << "the host did not exit with a 60 s job on a worker";
  EXPECT_EQ(*status, 0);
  EXPECT_LT(tookMs, kDrainMs + 2500) << "TERM took longer than drain_timeout_ms + the stop grace";
  EXPECT_TRUE(host.waitForLog("1 worker job\\(s\\) still running at the drain deadline", 1000ms).has_value());
}

}  // namespace
}  // namespace protohost::reliability
