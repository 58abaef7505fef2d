// [host] drain_delay_ms (issue 12, behind a load balancer): on SIGTERM /readyz
// turns 503 at once while the listeners keep accepting for the delay, so a
// balancer's health check takes the host out before its connects would be
// refused; then the usual drain (T24) runs. The real host binary, loopback only.

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <string>

#include "HostProcess.h"
#include "ReliabilitySupport.h"
#include "TestClient.h"

namespace protohost::reliability {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using e2e::HostIni;
using e2e::HostProcess;

long long msSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

TEST(Reliability, DrainDelayReportsNotReadyWhileTheListenersStillAccept) {
  constexpr int kDelayMs = 3000, kDrainMs = 2000;
  HostProcess host;
  DumpLogOnFailure dump{host};
  HostIni ini;
  ini.set("drain_delay_ms", std::to_string(kDelayMs)).set("drain_timeout_ms", std::to_string(kDrainMs));
  ini.listener("echo", "echo");
  ini.raw(kAdminSection);
  host.startWithConfig(ini.text());
  const std::uint16_t echo = host.port("echo"), admin = host.port("admin");
  ASSERT_EQ(httpGet(admin, "/readyz").status, 200);
  TestClient before = TestClient::connect(echo);
  ASSERT_EQ(before.roundTrip("before"), "before");

  const auto term = Clock::now();
  ASSERT_TRUE(host.signal(SIGTERM));
  // Not ready at once (the signal thread sets it), long before the delay ends.
  HttpResponse r;
  ASSERT_TRUE(waitUntil([&] { return (r = httpGet(admin, "/readyz")).status == 503; }, 1s));
  const long long notReadyMs = msSince(term);
  EXPECT_NE(r.body.find("draining"), std::string::npos) << r.body;
  // During the delay the listener accepts and serves, and the open session goes on.
  TestClient during = TestClient::connect(echo);
  EXPECT_EQ(during.roundTrip("during"), "during");
  EXPECT_EQ(before.roundTrip("still"), "still");
  const long long servedMs = msSince(term);
  ASSERT_LT(servedMs, kDelayMs) << "the checks took longer than the delay; nothing above was during it";

  // Then the listener closes: refused no earlier than the delay, soon after it.
  ASSERT_TRUE(waitUntil([&] { return probeConnect(echo, 200ms) == ECONNREFUSED; }, std::chrono::milliseconds(kDelayMs + 2000)));
  const long long refusedMs = msSince(term);
  EXPECT_GE(refusedMs, kDelayMs - 50) << "the listener closed before drain_delay_ms";
  // The drain asks the sessions to finish (echo closes), and the host exits 0 within delay + drain + 2.5 s.
  EXPECT_EQ(during.waitClosed(std::chrono::milliseconds(kDrainMs + 2000)).how, Ending::Eof);
  EXPECT_EQ(before.waitClosed(std::chrono::milliseconds(kDrainMs + 2000)).how, Ending::Eof);
  during.close();  // our FINs end the host's lingering closes: the drain is over before its deadline
  before.close();
  EXPECT_EQ(host.waitExit(std::chrono::milliseconds(kDelayMs + kDrainMs + 2500)), 0);
  const long long exitMs = msSince(term);
  EXPECT_LT(exitMs, kDelayMs + kDrainMs) << "the drain waited for its deadline although every connection had ended";
  EXPECT_TRUE(host.waitForLog("received SIGTERM, /readyz reports 503 for 3000 ms \\(drain_delay_ms\\)", 1s));
  std::printf("[ measured ] drain_delay_ms = %d: /readyz 503 after %lld ms, served until %lld ms, refused at %lld ms, "
              "exit at %lld ms after SIGTERM\n",
              kDelayMs, notReadyMs, servedMs, refusedMs, exitMs);
}

}  // namespace
}  // namespace protohost::reliability
