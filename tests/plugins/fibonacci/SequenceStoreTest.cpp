#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "FibTestSupport.h"
#include "SequenceStore.h"
#include "StateFormat.h"
#include "protohost/Factory.h"

using namespace protohost::plugins::fibonacci;
using Status = SequenceStore::Reservation::Status;
using fibtest::readFile;
using fibtest::TempDir;
using fibtest::writeFile;

namespace {

std::uint64_t stateOnDisk(const std::string& path) { return decodeState(readFile(path)); }

class SequenceStoreTest : public ::testing::Test {
 protected:
  TempDir dir;
  std::string path = dir.file("fib.state");
  fibtest::LockedLogger logger;
};

}  // namespace

TEST_F(SequenceStoreTest, FreshStartCreatesTheFile) {
  SequenceStore store(path, logger);
  auto r = store.open();
  EXPECT_TRUE(r.created);
  EXPECT_EQ(r.next, 1u);
  EXPECT_TRUE(r.writeError.empty());
  EXPECT_EQ(readFile(path), encodeStateFile(1, 1));
  EXPECT_FALSE(std::filesystem::exists(store.tempPath()));
}

TEST_F(SequenceStoreTest, ReservationIsDurableBeforeItIsReturned) {
  SequenceStore store(path, logger);
  store.open();
  auto r = store.reserve(1, 1024, 100001);
  ASSERT_EQ(r.status, Status::Reserved) << r.error;
  EXPECT_EQ(r.start, 1u);
  EXPECT_EQ(r.ceiling, 1025u);
  EXPECT_EQ(stateOnDisk(path), 1025u);
  EXPECT_EQ(store.durableCeiling(), 1025u);
  r = store.reserve(1025, 1024, 100001);
  EXPECT_EQ(r.start, 1025u);
  EXPECT_EQ(stateOnDisk(path), 2049u);
}

TEST_F(SequenceStoreTest, ReservationStopsAtTheLimit) {
  SequenceStore store(path, logger);
  store.open();
  auto r = store.reserve(1, 1024, 11);  // max_index 10
  ASSERT_EQ(r.status, Status::Reserved);
  EXPECT_EQ(r.ceiling, 11u);
  r = store.reserve(11, 1024, 11);
  EXPECT_EQ(r.status, Status::Exhausted);
  EXPECT_EQ(stateOnDisk(path), 11u);
}

TEST_F(SequenceStoreTest, RestartAfterCrashContinuesAtTheCeiling) {
  {
    SequenceStore store(path, logger);
    store.open();
    ASSERT_EQ(store.reserve(1, 100, 100001).status, Status::Reserved);
    // ... answers 1..37 served, then kill -9: no release().
  }
  SequenceStore again(path, logger);
  auto r = again.open();
  EXPECT_FALSE(r.created);
  EXPECT_EQ(r.next, 101u);
  auto res = again.reserve(r.next, 100, 100001);
  EXPECT_EQ(res.start, 101u);
  EXPECT_EQ(res.ceiling, 201u);
}

TEST_F(SequenceStoreTest, CleanStopRecordsTheExactNextAnswer) {
  {
    SequenceStore store(path, logger);
    store.open();
    ASSERT_EQ(store.reserve(1, 1024, 100001).status, Status::Reserved);
    EXPECT_TRUE(store.release(38).recorded);
  }
  EXPECT_EQ(stateOnDisk(path), 38u);
  SequenceStore again(path, logger);
  EXPECT_EQ(again.open().next, 38u);
  EXPECT_TRUE(again.release(38).recorded);
  EXPECT_EQ(stateOnDisk(path), 38u);
}

TEST_F(SequenceStoreTest, ReleaseNeverRecordsMoreThanTheCeiling) {
  SequenceStore store(path, logger);
  store.open();
  ASSERT_EQ(store.reserve(1, 10, 100001).status, Status::Reserved);
  EXPECT_NE(store.release(12).error, "");
  EXPECT_EQ(stateOnDisk(path), 11u);
}

TEST_F(SequenceStoreTest, CorruptStateRefusesToStart) {
  const std::string good = encodeStateV1(5000);
  std::string badChecksum = good;
  badChecksum.replace(badChecksum.find("5000"), 4, "5001");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty"},
      {good.substr(0, good.size() / 2), "truncated"},
      {good.substr(0, good.size() - 1), "truncated"},
      {badChecksum, "checksum"},
      {"garbage\n", "not a protohost-fibonacci"},
      {std::string("protohost-fibonacci v1 next=5000 crc32=\0\0\0\0\0\0\0\0\n", 49), "crc32"},
  };
  for (const auto& [content, why] : cases) {
    writeFile(path, content);
    SequenceStore store(path, logger);
    try {
      store.open();
      ADD_FAILURE() << "opened a state file holding \"" << content << "\"";
    } catch (const protohost::StateError& e) {
      std::string what = e.what();
      EXPECT_NE(what.find(path), std::string::npos) << what;
      EXPECT_NE(what.find(why), std::string::npos) << what;
      EXPECT_NE(what.find("corrupt"), std::string::npos) << what;
    }
    // Never silently started over: the file is untouched.
    EXPECT_EQ(readFile(path), content);
  }
}

TEST_F(SequenceStoreTest, UnreadableStateRefusesToStart) {
  std::filesystem::create_directory(path);  // read() fails with EISDIR
  SequenceStore store(path, logger);
  EXPECT_THROW(store.open(), protohost::StateError);
}

TEST_F(SequenceStoreTest, StaleTempFileIsRemovedAtStart) {
  writeFile(path, encodeStateV1(77));
  writeFile(path + ".tmp", "protohost-fibonacci v1 next=99");  // a crash between create and rename
  SequenceStore store(path, logger);
  EXPECT_EQ(store.open().next, 77u);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_EQ(stateOnDisk(path), 77u);
}

// A crash or an error at each step of the durable write: the state on disk is
// always either the old or the new ceiling, never beyond what was reported, and a
// restart never hands out an answer below what may have been served.
// The write in place (the usual commit): the other slot keeps the old ceiling.
TEST_F(SequenceStoreTest, FailureAtEveryStepOfAWriteInPlaceKeepsTheOldCeilingAuthoritative) {
  for (std::string step : {"read", "pwrite", "fdatasync", "lock"}) {
    SCOPED_TRACE(step);
    std::filesystem::remove(path);
    auto ops = std::make_shared<fibtest::FailingOps>();
    std::uint64_t served = 0;  // highest answer that may have been served
    {
      SequenceStore store(path, logger, ops);
      store.open();
      auto r = store.reserve(1, 100, 100001);
      ASSERT_EQ(r.status, Status::Reserved);
      ASSERT_EQ(ops->calls("pwrite"), 1);  // the fresh file was replaced in; this one went in place
      served = r.ceiling - 1;  // the whole block went out
      ops->fail(step, step == "fdatasync" ? EIO : ENOSPC);
      auto failed = store.reserve(r.ceiling, 100, 100001);
      EXPECT_EQ(failed.status, Status::Failed);
      EXPECT_NE(failed.error, "");
      EXPECT_EQ(store.durableCeiling(), 101u);
      // kill -9 here
    }
    ops->heal();
    SequenceStore restarted(path, logger);
    auto r = restarted.open();  // never a StateError: one slot holds the old record at least
    EXPECT_GT(r.next, served);
    EXPECT_TRUE(r.next == 101u || r.next == 201u) << r.next;
    EXPECT_EQ(readFile(path).size(), kStateFileBytes);
  }
}

// The whole-file replacement (the first write after start, and after any failure).
TEST_F(SequenceStoreTest, FailureAtEveryStepOfAReplacementKeepsTheOldCeilingAuthoritative) {
  for (std::string step : {"remove-temp", "create", "write", "fsync", "close-temp", "rename", "fsync-dir", "read",
                           "lock"}) {
    SCOPED_TRACE(step);
    std::filesystem::remove(path);
    {
      SequenceStore first(path, logger);
      first.open();
      ASSERT_EQ(first.reserve(1, 100, 100001).status, Status::Reserved);
      // kill -9: answers up to 100 may have been served
    }
    const std::uint64_t served = 100;
    auto ops = std::make_shared<fibtest::FailingOps>();
    {
      SequenceStore store(path, logger, ops);
      ASSERT_EQ(store.open().next, 101u);
      ops->fail(step, step == "fsync" ? EIO : ENOSPC);
      auto failed = store.reserve(101, 100, 100001);  // the first write after start replaces the file
      EXPECT_EQ(failed.status, Status::Failed);
      EXPECT_NE(failed.error, "");
      EXPECT_EQ(store.durableCeiling(), 101u);
      EXPECT_EQ(ops->calls("pwrite"), 0);
      // kill -9 here
    }
    ops->heal();
    SequenceStore restarted(path, logger);
    auto r = restarted.open();  // never a StateError: the file is the old or the new one
    EXPECT_GT(r.next, served);
    EXPECT_TRUE(r.next == 101u || r.next == 201u) << r.next;
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  }
}

// A failed write in place is never trusted: the next write replaces the whole file
// (a fresh temp file, its own fsync), it does not retry the fdatasync.
TEST_F(SequenceStoreTest, RetryAfterAFailureReplacesTheFileAndSucceeds) {
  auto ops = std::make_shared<fibtest::FailingOps>();
  SequenceStore store(path, logger, ops);
  store.open();
  ASSERT_EQ(store.reserve(1, 10, 100001).status, Status::Reserved);
  ops->fail("fdatasync", EIO, 1);  // the record is in the page cache, its durability unknown
  auto failed = store.reserve(11, 10, 100001);
  ASSERT_EQ(failed.status, Status::Failed);
  EXPECT_NE(failed.error.find("fdatasync"), std::string::npos) << failed.error;
  EXPECT_EQ(store.durableCeiling(), 11u);
  const int creates = ops->calls("create"), syncs = ops->calls("fdatasync");
  auto ok = store.reserve(11, 10, 100001);
  ASSERT_EQ(ok.status, Status::Reserved) << ok.error;
  EXPECT_EQ(ops->calls("create"), creates + 1);
  EXPECT_EQ(ops->calls("fdatasync"), syncs);
  EXPECT_EQ(ok.start, 11u);  // its own failed attempt is not someone else's reservation
  EXPECT_GE(ok.ceiling, 21u);
  EXPECT_EQ(stateOnDisk(path), ok.ceiling);
  // Back in place afterwards.
  ASSERT_EQ(store.reserve(ok.ceiling, 10, 100001).status, Status::Reserved);
  EXPECT_EQ(ops->calls("create"), creates + 1);
  EXPECT_EQ(ops->calls("fdatasync"), syncs + 1);
}

// Writes in place alternate between the slots with rising generations; the file never changes size.
TEST_F(SequenceStoreTest, WritesInPlaceAlternateSlots) {
  auto ops = std::make_shared<fibtest::FailingOps>();
  SequenceStore store(path, logger, ops);
  store.open();  // the fresh file: gen 1 in slot 0
  StateImage image = decodeStateImage(readFile(path));
  EXPECT_EQ(image.gen, 1u);
  EXPECT_EQ(image.slot, 0u);
  std::uint64_t cur = 1;
  for (std::uint64_t i = 1; i <= 6; ++i) {
    auto r = store.reserve(cur, 5, 100001);
    ASSERT_EQ(r.status, Status::Reserved);
    cur = r.ceiling;
    const std::string content = readFile(path);
    ASSERT_EQ(content.size(), kStateFileBytes);
    image = decodeStateImage(content);
    EXPECT_EQ(image.gen, 1 + i);
    EXPECT_EQ(image.slot, i % 2);
    EXPECT_EQ(image.next, cur);
    // The other slot holds the previous record.
    EXPECT_EQ(content.substr((1 - i % 2) * kSlotBytes, kSlotBytes), i == 1 ? encodeStateFile(1, 1).substr(0, kSlotBytes)
                                                                           : encodeSlot(1 - i % 2, i, cur - 5));
  }
  EXPECT_EQ(ops->calls("rename"), 1);
  EXPECT_EQ(ops->calls("fdatasync"), 6);
  EXPECT_EQ(ops->calls("fsync"), 1 + 6);  // the fresh file's fsync, then the fdatasyncs
}

// kill -9 or power loss in the middle of a write in place: the slot written is
// torn, the other one still has a ceiling above every answer served.
TEST_F(SequenceStoreTest, ATornSlotFallsBackToTheOtherSlot) {
  {
    SequenceStore store(path, logger);
    store.open();
    ASSERT_EQ(store.reserve(1, 10, 100001).status, Status::Reserved);   // gen 2, slot 1: next=11
    ASSERT_EQ(store.reserve(11, 10, 100001).status, Status::Reserved);  // gen 3, slot 0: next=21
  }
  // The write of gen 4 into slot 1 tore: part of the new record over the old one.
  std::string content = readFile(path);
  const std::string next = encodeSlot(1, 4, 31);
  content.replace(kSlotBytes, 40, next.substr(0, 40));
  writeFile(path, content);
  SequenceStore store(path, logger);
  auto r = store.open();
  EXPECT_EQ(r.next, 21u);
  EXPECT_EQ(logger.count(protohost::LogLevel::Warning), 1u);
  // The first write after the restart replaces the file: no damaged slot is left.
  auto res = store.reserve(21, 10, 100001);
  ASSERT_EQ(res.status, Status::Reserved);
  EXPECT_EQ(res.start, 21u);
  StateImage image = decodeStateImage(readFile(path));
  EXPECT_EQ(image.next, 31u);
  EXPECT_EQ(image.gen, 4u);
  EXPECT_EQ(image.damaged[0], "");
  EXPECT_EQ(image.damaged[1], "");
}

TEST_F(SequenceStoreTest, BothSlotsBadRefusesToStart) {
  std::string content = encodeStateFile(7, 500);
  content[10] = 'X';                                        // slot 0: not the magic
  content.replace(kSlotBytes, 5, "junk\n");                // slot 1: not a record
  writeFile(path, content);
  SequenceStore store(path, logger);
  try {
    store.open();
    ADD_FAILURE() << "opened a file with no valid slot";
  } catch (const protohost::StateError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("corrupt"), std::string::npos) << what;
    EXPECT_NE(what.find("slot 0"), std::string::npos) << what;
    EXPECT_NE(what.find("slot 1"), std::string::npos) << what;
  }
  EXPECT_EQ(readFile(path), content);  // untouched
}

// A v1 file (one line, written by versions before the slot file) is converted at
// start: same ceiling, by the whole-file replacement; a crash before its rename
// leaves the v1 file, converted at the next start.
TEST_F(SequenceStoreTest, AVersion1FileIsConvertedAtStart) {
  writeFile(path, encodeStateV1(4242));
  {
    auto ops = std::make_shared<fibtest::FailingOps>();
    ops->fail("rename", EIO);
    SequenceStore store(path, logger, ops);
    auto r = store.open();
    EXPECT_EQ(r.next, 4242u);
    EXPECT_NE(r.writeError, "");  // nothing may be served until a write works
    EXPECT_EQ(readFile(path), encodeStateV1(4242));
  }
  SequenceStore store(path, logger);
  auto r = store.open();
  EXPECT_EQ(r.next, 4242u);
  EXPECT_EQ(r.writeError, "");
  EXPECT_EQ(readFile(path), encodeStateFile(1, 4242));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  bool logged = false;
  for (const auto& l : logger.lines) logged |= l.text.find("converted") != std::string::npos;
  EXPECT_TRUE(logged);
  auto res = store.reserve(4242, 10, 100001);
  ASSERT_EQ(res.status, Status::Reserved);
  EXPECT_EQ(res.start, 4242u);
  EXPECT_EQ(stateOnDisk(path), 4252u);
}

TEST_F(SequenceStoreTest, MissingDirectoryIsAWriteFailureNotACrash) {
  const std::string sub = dir.file("gone");
  const std::string p = sub + "/fib.state";
  std::filesystem::create_directory(sub);
  SequenceStore store(p, logger);
  store.open();
  ASSERT_EQ(store.reserve(1, 10, 100001).status, Status::Reserved);
  std::filesystem::rename(sub, dir.file("moved"));  // works as root too, unlike chmod
  auto r = store.reserve(11, 10, 100001);
  EXPECT_EQ(r.status, Status::Failed);
  EXPECT_EQ(r.errorNumber, ENOENT);
  EXPECT_EQ(stateOnDisk(dir.file("moved") + "/fib.state"), 11u);
}

TEST_F(SequenceStoreTest, MissingStateDirectoriesAreCreatedAtStart) {
  const std::string p = dir.file("var/lib/fib.state");
  SequenceStore store(p, logger);
  auto r = store.open();
  EXPECT_TRUE(r.created);
  EXPECT_EQ(stateOnDisk(p), 1u);
}

TEST_F(SequenceStoreTest, FreshStartThatCannotWriteReportsTheWriteError) {
  auto ops = std::make_shared<fibtest::FailingOps>();
  ops->fail("fsync", EIO);
  SequenceStore store(path, logger, ops);
  auto r = store.open();
  EXPECT_FALSE(r.created);
  EXPECT_NE(r.writeError, "");
  EXPECT_EQ(r.errorNumber, EIO);
  EXPECT_EQ(r.next, 1u);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ(store.reserve(1, 10, 100001).status, Status::Failed);
}

TEST_F(SequenceStoreTest, AnImpossibleStatePathRefusesToStart) {
  writeFile(dir.file("plain"), "a file, not a directory");
  SequenceStore store(dir.file("plain") + "/fib.state", logger);
  EXPECT_THROW(store.open(), protohost::StateError);  // ENOTDIR: the state cannot be known
}

// Runs the read-only-directory scenario and returns "" or what went wrong.
// Root ignores directory permissions, so as root it runs in a child process
// that first becomes an unprivileged user (and owns the test directory).
static std::string readOnlyDirectoryScenario(const std::string& dirPath, const std::string& path) {
  fibtest::LockedLogger log;
  {
    SequenceStore store(path, log);
    store.open();
    if (store.reserve(1, 10, 100001).status != Status::Reserved) return "first reservation failed";
    // kill -9
  }
  if (::chmod(dirPath.c_str(), 0555) != 0) return "chmod failed";
  // The first write after a start replaces the file: a temp file in the directory.
  SequenceStore store(path, log);
  if (store.open().next != 11u) return "did not continue from the ceiling";
  auto r = store.reserve(11, 10, 100001);
  ::chmod(dirPath.c_str(), 0755);
  if (r.status != Status::Failed) return "reservation in a read-only directory did not fail";
  if (r.errorNumber != EACCES) return "errno " + std::to_string(r.errorNumber) + ", expected EACCES";
  if (stateOnDisk(path) != 11u) return "durable ceiling moved to " + std::to_string(stateOnDisk(path));
  return "";
}

TEST_F(SequenceStoreTest, ReadOnlyDirectoryFailsClosed) {
  if (::geteuid() != 0) {
    EXPECT_EQ(readOnlyDirectoryScenario(dir.path(), path), "");
    return;
  }
  const uid_t nobody = 65534;
  ASSERT_EQ(::chown(dir.path().c_str(), nobody, nobody), 0);
  int pipeFds[2];
  ASSERT_EQ(::pipe(pipeFds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipeFds[0]);
    std::string why = (::setgid(nobody) == 0 && ::setuid(nobody) == 0) ? readOnlyDirectoryScenario(dir.path(), path)
                                                                       : "cannot become uid 65534";
    [[maybe_unused]] auto n = ::write(pipeFds[1], why.data(), why.size());
    ::_exit(why.empty() ? 0 : 1);
  }
  ::close(pipeFds[1]);
  std::string why;
  char buf[256];
  for (ssize_t n; (n = ::read(pipeFds[0], buf, sizeof buf)) > 0;) why.append(buf, static_cast<std::size_t>(n));
  ::close(pipeFds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_EQ(why, "");
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

// A config reload runs a new factory while the old one still serves its connections.
TEST_F(SequenceStoreTest, TwoStoresOnOneFileNeverOverlap) {
  SequenceStore oldStore(path, logger);
  oldStore.open();
  auto a = oldStore.reserve(1, 10, 100001);  // old serves [1, 11)
  SequenceStore newStore(path, logger);
  EXPECT_EQ(newStore.open().next, 11u);
  auto b = newStore.reserve(11, 10, 100001);  // new serves [11, 21)
  EXPECT_EQ(b.start, 11u);
  auto a2 = oldStore.reserve(11, 10, 100001);  // old used its block up: must skip past the new one's
  ASSERT_EQ(a2.status, Status::Reserved);
  EXPECT_EQ(a2.start, 21u);
  EXPECT_EQ(a2.ceiling, 31u);
  // The old one stops while the new one lives: the ceiling is not lowered.
  auto released = oldStore.release(23);
  EXPECT_FALSE(released.recorded);
  EXPECT_EQ(released.error, "");
  EXPECT_NE(released.note.find("still running"), std::string::npos) << released.note;
  EXPECT_EQ(stateOnDisk(path), 31u);
  auto b2 = newStore.reserve(21, 10, 100001);
  EXPECT_EQ(b2.start, 31u);
  // The last one records its exact position.
  EXPECT_TRUE(newStore.release(35).recorded);
  EXPECT_EQ(stateOnDisk(path), 35u);
}

TEST_F(SequenceStoreTest, AFileAdvancedByADeadWriterIsNeverLowered) {
  SequenceStore store(path, logger);
  store.open();
  ASSERT_EQ(store.reserve(1, 10, 100001).status, Status::Reserved);
  writeFile(path, encodeStateV1(500));  // another process reserved up to 500 and died
  auto released = store.release(5);
  EXPECT_FALSE(released.recorded);
  EXPECT_EQ(released.error, "");
  EXPECT_NE(released.note.find("advanced"), std::string::npos) << released.note;
  EXPECT_EQ(stateOnDisk(path), 500u);
}

TEST_F(SequenceStoreTest, CorruptionWhileRunningFailsClosedWithoutOverwriting) {
  SequenceStore store(path, logger);
  store.open();
  ASSERT_EQ(store.reserve(1, 10, 100001).status, Status::Reserved);
  writeFile(path, "junk");
  auto r = store.reserve(11, 10, 100001);
  EXPECT_EQ(r.status, Status::Failed);
  EXPECT_NE(r.error.find("corrupt"), std::string::npos);
  EXPECT_EQ(readFile(path), "junk");
}
