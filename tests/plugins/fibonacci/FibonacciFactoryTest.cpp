#include <gtest/gtest.h>
#include <sys/stat.h>
#include <set>
#include <thread>

#include "FibTestSupport.h"
#include "FibonacciFactory.h"
#include "FibonacciProtocol.h"
#include "StateFormat.h"

using namespace protohost::plugins::fibonacci;
using protohost::ConfigError;
using protohost::ConfigView;
using protohost::testing::MemoryTransport;
using fibtest::TempDir;

namespace {

ConfigView config(const std::string& baseDir, std::map<std::string, std::string> values) {
  std::map<std::string, ConfigView::Entry> entries;
  int line = 2;
  for (auto& [k, v] : values) entries[k] = {v, line++};
  return ConfigView("host.ini", "listener.fib", 1, baseDir, std::move(entries));
}

std::string configError(const std::string& baseDir, std::map<std::string, std::string> values) {
  FibonacciFactory f;
  try {
    f.configure(config(baseDir, std::move(values)));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(FibonacciFactory, DefaultsAndEveryKeyIsRead) {
  TempDir dir;
  FibonacciFactory f;
  auto c = config(dir.path(), {});
  f.configure(c);
  EXPECT_EQ(f.statePath(), dir.path() + "/fibonacci.state");
  EXPECT_EQ(f.options().reserveBlock, 1024u);
  EXPECT_EQ(f.options().maxIndex, 100000u);
  EXPECT_EQ(f.maxLineBytes(), 1024u);

  auto all = config(dir.path(), {{"state_file", "var/fib.state"},
                                 {"reserve_block", "10"},
                                 {"max_index", "500"},
                                 {"max_line_bytes", "64"}});
  f.configure(all);
  EXPECT_TRUE(all.unreadKeys().empty());
  EXPECT_EQ(f.statePath(), dir.path() + "/var/fib.state");  // relative to the config file
  EXPECT_EQ(f.options().reserveBlock, 10u);
  EXPECT_EQ(f.options().maxIndex, 500u);
  EXPECT_EQ(f.maxLineBytes(), 64u);

  auto other = config(dir.path(), {{"state_file", "/abs/fib.state"}, {"bogus", "1"}});
  f.configure(other);
  EXPECT_EQ(f.statePath(), "/abs/fib.state");
  EXPECT_EQ(other.unreadKeys(), std::vector<std::string>{"bogus"});  // the host reports it as unknown
}

TEST(FibonacciFactory, RejectsValuesOutOfRange) {
  EXPECT_NE(configError("/x", {{"reserve_block", "0"}}).find("reserve_block"), std::string::npos);
  EXPECT_NE(configError("/x", {{"reserve_block", "1000001"}}).find("out of range"), std::string::npos);
  EXPECT_NE(configError("/x", {{"max_index", "0"}}).find("max_index"), std::string::npos);
  EXPECT_NE(configError("/x", {{"max_index", "10000001"}}).find("out of range"), std::string::npos);
  EXPECT_NE(configError("/x", {{"max_line_bytes", "0"}}).find("max_line_bytes"), std::string::npos);
  EXPECT_NE(configError("/x", {{"max_index", "lots"}}).find("expected an integer"), std::string::npos);
  EXPECT_NE(configError("/x", {{"state_file", ""}}).find("state_file: must not be empty"), std::string::npos);
  EXPECT_EQ(configError("/x", {{"reserve_block", "1000000"}, {"max_index", "10000000"}}), "");
}

TEST(FibonacciFactory, ServesStopsAndResumesExactly) {
  TempDir dir;
  fibtest::TestContext ctx;
  {
    FibonacciFactory f;
    f.configure(config(dir.path(), {{"state_file", "fib.state"}}));
    EXPECT_FALSE(f.isReady());
    f.start(ctx);
    EXPECT_TRUE(f.isReady());
    auto p = f.buildProtocol();
    ASSERT_TRUE(p);
    MemoryTransport t;
    t.connect(*p);
    fibtest::feed(t, *p, "NEXT\nNEXT\nNEXT\n");
    EXPECT_EQ(t.value(), "2\r\n3\r\n5\r\n");
    t.disconnect(*p);
    p.reset();
    f.stop();
    EXPECT_FALSE(f.isReady());
  }
  EXPECT_EQ(decodeState(fibtest::readFile(dir.file("fib.state"))), 4u);
  FibonacciFactory f;
  f.configure(config(dir.path(), {{"state_file", "fib.state"}}));
  f.start(ctx);
  auto p = f.buildProtocol();
  MemoryTransport t;
  t.connect(*p);
  fibtest::feed(t, *p, "NEXT\n");
  EXPECT_EQ(t.value(), "8\r\n");
  p.reset();
  f.stop();
}

TEST(FibonacciFactory, CorruptStateMakesStartThrowStateError) {
  TempDir dir;
  fibtest::writeFile(dir.file("fib.state"), "protohost-fibonacci v1 next=40 crc32=00000000\n");
  fibtest::TestContext ctx;
  FibonacciFactory f;
  f.configure(config(dir.path(), {{"state_file", "fib.state"}}));
  EXPECT_THROW(f.start(ctx), protohost::StateError);
}

TEST(FibonacciFactory, ConcurrentBuildProtocolSharesOneSequence) {
  TempDir dir;
  fibtest::TestContext ctx;
  FibonacciFactory f;
  f.configure(config(dir.path(), {{"reserve_block", "8"}}));
  f.start(ctx);
  std::vector<std::string> outputs(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      for (int c = 0; c < 50; ++c) {
        auto p = f.buildProtocol();
        MemoryTransport t;
        t.connect(*p);
        fibtest::feed(t, *p, "NEXT\nNEXT\n");
        outputs[i] += t.value();
      }
    });
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (const auto& out : outputs)
    for (const auto& v : fibtest::lines(out)) EXPECT_TRUE(all.insert(v).second) << v;
  EXPECT_EQ(all.size(), 400u);
  const auto reference = fibtest::referenceAnswers(400);
  EXPECT_EQ(all, std::set<std::string>(reference.begin(), reference.end()));
  f.stop();
}

// [host] worker_threads = 0: deferToThread is refused (ShuttingDown), and the
// plugin refuses to start rather than wait for fsync on the reactor.
TEST(FibonacciFactory, RefusesToStartWithoutTheHostsWorkerPool) {
  TempDir dir;
  fibtest::TestContext ctx;
  ctx.manualReactor().stopWork();
  FibonacciFactory f;
  f.configure(config(dir.path(), {{"state_file", "fib.state"}}));
  try {
    f.start(ctx);
    FAIL() << "start() accepted a host without worker threads";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("worker_threads"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(f.isReady());
  EXPECT_FALSE(std::filesystem::exists(dir.file("fib.state"))) << "nothing is written before the check";
}

// ---- store = postgres: its keys, and the checks of postgres_password_file (owner, mode)

TEST(FibonacciFactory, PostgresFileIsTheDefaultAndPostgresKeysAreReadWithDefaults) {
  TempDir dir;
  FibonacciFactory f;
  f.configure(config(dir.path(), {}));
  EXPECT_FALSE(f.sharedStore());

  const std::string pw = dir.write("pw", "s3cret\n");
  ASSERT_EQ(::chmod(pw.c_str(), 0600), 0);
  auto c = config(dir.path(), {{"store", "postgres"},
                               {"postgres", "host=db1,db2 port=5432,5433 dbname=fib target_session_attrs=read-write"},
                               {"postgres_password_file", "pw"},
                               {"postgres_sequence", "fib-eu"},
                               {"postgres_timeout_ms", "750"}});
  f.configure(c);
  EXPECT_TRUE(c.unreadKeys().empty());
  ASSERT_TRUE(f.sharedStore());
  EXPECT_EQ(f.postgres()->password, "s3cret");  // the first line, relative to the config file
  EXPECT_EQ(f.postgres()->sequence, "fib-eu");
  EXPECT_EQ(f.postgres()->timeout, std::chrono::milliseconds(750));

  f.configure(config(dir.path(), {{"store", "postgres"}, {"postgres", "postgresql://fib@db/fib"}}));
  EXPECT_EQ(f.postgres()->sequence, "fibonacci");
  EXPECT_EQ(f.postgres()->timeout, std::chrono::milliseconds(2000));
  EXPECT_EQ(f.postgres()->password, "");  // libpq's own (PGPASSFILE, ~/.pgpass)
}

TEST(FibonacciFactory, PostgresErrorsNameTheFileLineAndKey) {
  TempDir dir;
  EXPECT_EQ(configError(dir.path(), {{"store", "redis"}}),
            "host.ini:2: store: expected one of file, postgres, got \"redis\"");
  EXPECT_EQ(configError(dir.path(), {{"store", "postgres"}}), "host.ini:1: postgres: missing required key");
  EXPECT_EQ(configError(dir.path(), {{"postgres", "host=db"}}), "host.ini:2: postgres: only with store = postgres");
  EXPECT_EQ(configError(dir.path(), {{"store", "postgres"}, {"postgres", "host=db"}, {"postgres_timeout_ms", "0"}}),
            "host.ini:3: postgres_timeout_ms: value 0 out of range [1, 600000]");
  EXPECT_NE(configError(dir.path(), {{"store", "postgres"}, {"postgres", "hostt=db"}}).find("host.ini:2: postgres: "),
            std::string::npos);
  const std::string noPassword =
      "holds a password; put it in postgres_password_file (mode 0600) or libpq's PGPASSFILE, never in the INI";
  EXPECT_EQ(configError(dir.path(), {{"store", "postgres"}, {"postgres", "host=db password=s3cret"}}),
            "host.ini:2: postgres: " + noPassword);
  EXPECT_EQ(configError(dir.path(), {{"store", "postgres"}, {"postgres", "postgresql://fib:s3cret@db/fib"}}),
            "host.ini:2: postgres: " + noPassword);
  EXPECT_EQ(configError(dir.path(), {{"store", "postgres"}, {"postgres", "host=db"}, {"postgres_sequence", ""}}),
            "host.ini:3: postgres_sequence: must be 1 to 200 characters");
}

TEST(FibonacciFactory, PostgresPasswordFileMustBeMode0600AndOwnedByTheRunningUser) {
  TempDir dir;
  const std::string pw = dir.write("pw", "s3cret\n");
  auto keys = [&](const std::string& file) {
    return std::map<std::string, std::string>{
        {"store", "postgres"}, {"postgres", "host=db"}, {"postgres_password_file", file}};
  };
  ASSERT_EQ(::chmod(pw.c_str(), 0644), 0);
  EXPECT_EQ(configError(dir.path(), keys("pw")),
            "host.ini:3: postgres_password_file: " + pw + ": mode 0644 lets group or others read it; it must be 0600 "
            "(chmod 600 " + pw + ")");
  ASSERT_EQ(::chmod(pw.c_str(), 0600), 0);
  EXPECT_EQ(configError(dir.path(), keys("pw")), "");
  if (::geteuid() == 0) {  // root can give the file away; a user cannot
    ASSERT_EQ(::chown(pw.c_str(), 65534, static_cast<gid_t>(-1)), 0);
    EXPECT_NE(configError(dir.path(), keys("pw")).find("postgres_password_file: " + pw + ": owned by uid 65534"),
              std::string::npos);
  }
  EXPECT_NE(configError(dir.path(), keys("missing")).find("host.ini:3: postgres_password_file: "), std::string::npos);
  const std::string empty = dir.write("empty", "");
  ASSERT_EQ(::chmod(empty.c_str(), 0600), 0);
  EXPECT_NE(configError(dir.path(), keys("empty")).find(": empty;"), std::string::npos);
}
