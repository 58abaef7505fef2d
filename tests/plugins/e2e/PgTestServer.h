#pragma once
/// @file PgTestServer.h
/// A real PostgreSQL 15 for the store = postgres end-to-end tests, started by
/// the repo's own scripts/pg-test-server.sh in a private temp directory on a
/// free loopback port (as `nobody` when the tests run as root), stopped and
/// removed at scope exit.
///
/// Threads: one thread (the test's).

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "TempDir.h"

namespace protohost::e2e::plugintest {

class PgTestServer {
 public:
  static constexpr const char* kInitdb = "/usr/lib/postgresql/15/bin/initdb";
  static constexpr const char* kScript = PROTOHOST_SOURCE_DIR "/scripts/pg-test-server.sh";

  /// PostgreSQL 15 is installed (scripts/bootstrap.sh installs it).
  static bool installed() { return ::access(kInitdb, X_OK) == 0; }
  /// CI=true: a missing server is a failure, not a skip.
  static bool inCi() {
    const char* ci = std::getenv("CI");
    return ci && std::string(ci) == "true";
  }

  PgTestServer() : dir_("protohost-pg") {}
  ~PgTestServer() {
    if (started_) (void)run("stop");
  }
  PgTestServer(const PgTestServer&) = delete;
  PgTestServer& operator=(const PgTestServer&) = delete;

  /// Starts it (initdb the first time): "" or the script's output saying why not.
  std::string start() {
    std::string out;
    if (run("start", &out) != 0) return "scripts/pg-test-server.sh start failed: " + out;
    return parsePort(out);
  }
  /// Starts this one as a streaming, synchronous standby of @p primary (which must run): "" or why not.
  std::string startStandbyOf(const PgTestServer& primary) {
    std::string out;
    if (capture(std::string(kScript) + " standby '" + dir_.path() + "' '" + primary.dir_.path() + "' 2>&1", out) != 0)
      return "scripts/pg-test-server.sh standby failed: " + out;
    return parsePort(out);
  }
  /// pg_ctl promote (a standby becomes a primary), waited for: "" or why not.
  std::string promote() { return command("promote"); }
  /// pg_ctl stop -m fast, waited for: "" or why not.
  std::string stop() { return command("stop"); }
  /// SIGKILL to the postmaster and its backends: "" or why not.
  std::string kill() { return command("kill"); }

  int port() const { return port_; }
  /// Without the password: the hosts read it from passwordFile().
  std::string conninfo() const {
    return "postgresql://protohost@127.0.0.1:" + std::to_string(port_) + "/postgres";
  }
  /// The superuser's password, mode 0600, owned by the user running the tests.
  std::string passwordFile() const { return dir_ / "password"; }

  /// One SQL statement through psql over TCP; its unaligned output, or throws.
  std::string sql(const std::string& statement) const {
    const std::string cmd = "PGPASSFILE=/dev/null PGPASSWORD=$(cat '" + passwordFile() + "') psql -XAtq '" +
                            conninfo() + "' -c \"" + statement + "\" 2>&1";
    std::string out;
    if (capture(cmd, out) != 0) throw std::runtime_error("psql: " + statement + ": " + out);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }

 private:
  // The script's last output line is the port.
  std::string parsePort(std::string out) {
    while (!out.empty() && out.back() == '\n') out.pop_back();
    try {
      port_ = std::stoi(out.substr(out.find_last_of('\n') + 1));
    } catch (const std::exception&) {
      return "scripts/pg-test-server.sh printed no port: " + out;
    }
    started_ = true;
    return "";
  }
  std::string command(const std::string& name) {
    std::string out;
    return run(name, &out) == 0 ? "" : "scripts/pg-test-server.sh " + name + " failed: " + out;
  }
  int run(const std::string& command, std::string* out = nullptr) const {
    std::string ignored;
    return capture(std::string(kScript) + " " + command + " '" + dir_.path() + "' 2>&1", out ? *out : ignored);
  }
  static int capture(const std::string& cmd, std::string& out) {
    out.clear();
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return -1;
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    const int status = ::pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  protohost::testsupport::TempDir dir_;
  int port_ = 0;
  bool started_ = false;
};

/// In a TEST: skips (locally) or fails (CI=true) when PostgreSQL 15 is not installed.
#define PROTOHOST_REQUIRE_POSTGRES()                                                                      \
  do {                                                                                                    \
    if (!::protohost::e2e::plugintest::PgTestServer::installed()) {                                       \
      if (::protohost::e2e::plugintest::PgTestServer::inCi())                                             \
        FAIL() << "PostgreSQL 15 is not installed (" << PgTestServer::kInitdb << "): scripts/bootstrap.sh"; \
      GTEST_SKIP() << "PostgreSQL 15 is not installed (scripts/bootstrap.sh installs postgresql)";         \
    }                                                                                                     \
  } while (0)

}  // namespace protohost::e2e::plugintest
