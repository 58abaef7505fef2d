// End-to-end: the worked client example of docs/writing-a-plugin.md
// (examples/lookup) in the real host: local answers read on the worker pool,
// misses relayed over an outbound connection to a real upstream on loopback,
// and a refused upstream reported to the client.

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "HostProcess.h"
#include "TestClient.h"

#ifndef PROTOHOST_LOOKUP_PLUGIN
#error "PROTOHOST_LOOKUP_PLUGIN must name examples/lookup's lookup.so"
#endif

namespace protohost::e2e {
namespace {

using namespace std::chrono_literals;

// A line server on 127.0.0.1: answers "GET key" with "VALUE up-key" on every
// connection it accepts, from a thread of its own, until destroyed.
class UpstreamServer {
 public:
  UpstreamServer() : thread_([this] { run(); }) {}
  ~UpstreamServer() {
    stop_ = true;
    thread_.join();
    for (auto& [fd, buffer] : clients_) ::close(fd);
  }
  std::uint16_t port() const { return listener_.port(); }
  int accepted() const { return accepted_; }

 private:
  void run() {
    while (!stop_) {
      std::vector<pollfd> fds{{listener_.fd(), POLLIN, 0}};
      for (auto& [fd, buffer] : clients_) fds.push_back({fd, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        const int fd = ::accept4(listener_.fd(), nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) clients_[fd], ++accepted_;
      }
      for (std::size_t i = 1; i < fds.size(); ++i)
        if (fds[i].revents) serve(fds[i].fd);
    }
  }
  void serve(int fd) {
    char bytes[4096];
    const ssize_t n = ::recv(fd, bytes, sizeof bytes, 0);
    if (n <= 0) {
      ::close(fd);
      clients_.erase(fd);
      return;
    }
    std::string& buffer = clients_[fd];
    buffer.append(bytes, static_cast<std::size_t>(n));
    for (std::size_t nl; (nl = buffer.find('\n')) != std::string::npos; buffer.erase(0, nl + 1)) {
      const std::string answer = "VALUE up-" + buffer.substr(4, nl - 4) + "\n";
      ASSERT_EQ(::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL), static_cast<ssize_t>(answer.size()));
    }
  }

  LocalListener listener_;
  std::map<int, std::string> clients_;  // the thread's own
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;  // last: starts once the rest exists
};

class E2eLookupExample : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = (std::filesystem::temp_directory_path() / "lookup-e2e-XXXXXX").string();
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    root_ = dir;
    std::ofstream(root_ / "alpha") << "local one\n";
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "---- host stderr ----\n" << host_.stderrText() << "---------------------\n";
    std::filesystem::remove_all(root_);
  }
  // Starts the host with [listener.lookup] forwarding misses to @p upstreamPort.
  std::uint16_t start(std::uint16_t upstreamPort) {
    HostIni ini(host_.linkPlugins({PROTOHOST_LOOKUP_PLUGIN}));
    ini.listener("lookup", "lookup",
                 {{"upstream", "tcp:127.0.0.1:" + std::to_string(upstreamPort) + ":timeout=5000"},
                  {"root", root_.string()}});
    host_.startWithConfig(ini.text());
    return host_.port("lookup");
  }
  void stopCleanly() {
    ASSERT_TRUE(host_.signal(SIGTERM));
    EXPECT_EQ(host_.waitExit(20s), 0);
  }

  std::filesystem::path root_;
  HostProcess host_;
};

TEST_F(E2eLookupExample, AnswersFromFilesAndFromARealUpstreamInOrder) {
  UpstreamServer upstream;
  TestClient c = TestClient::connect(start(upstream.port()));
  c.sendAll("GET beta\nGET alpha\nGET ../alpha\nGET gamma\n");  // pipelined
  EXPECT_EQ(c.readLine(), "VALUE up-beta");
  EXPECT_EQ(c.readLine(), "VALUE local one");
  EXPECT_EQ(c.readLine(), "ERROR usage: GET key");
  EXPECT_EQ(c.readLine(), "VALUE up-gamma");
  EXPECT_EQ(upstream.accepted(), 1);  // one outbound connection per client, kept
  TestClient second = TestClient::connect(host_.port("lookup"));
  second.sendAll("GET delta\n");
  EXPECT_EQ(second.readLine(), "VALUE up-delta");
  EXPECT_EQ(upstream.accepted(), 2);
  c.close();
  second.close();
  stopCleanly();
}

TEST_F(E2eLookupExample, ARefusedUpstreamIsReportedAndLocalAnswersGoOn) {
  std::uint16_t closedPort;
  {
    LocalListener gone;  // bound, then closed: nothing listens there
    closedPort = gone.port();
  }
  TestClient c = TestClient::connect(start(closedPort));
  c.sendAll("GET beta\nGET alpha\n");
  EXPECT_EQ(c.readLine(), "ERROR upstream: 127.0.0.1:" + std::to_string(closedPort) + ": Connection refused");
  EXPECT_EQ(c.readLine(), "VALUE local one");
  c.close();
  stopCleanly();
}

// configure's checks reach the operator as the host's config errors (exit 78, nothing bound).
TEST_F(E2eLookupExample, AMissingRootIsAConfigErrorNamingTheKey) {
  HostIni ini(host_.linkPlugins({PROTOHOST_LOOKUP_PLUGIN}));
  ini.listener("lookup", "lookup", {{"upstream", "tcp:127.0.0.1:9"}});
  auto r = host_.run({"--config", host_.writeConfig(ini.text()), "--check-config"});
  EXPECT_EQ(r.status, 78) << r.err;
  EXPECT_NE(r.err.find("root: missing required key"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace protohost::e2e
