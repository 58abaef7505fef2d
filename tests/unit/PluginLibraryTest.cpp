// Loading plugins (host/src/plugin/PluginLibrary.h) against real shared objects:
// build/plugins/echo.so, the test-only fixtures in build/test-plugins
// (bad_abi.so, unresolved.so) and a text file named notelf.so made here.
// The ELF reader itself: PluginElfTest.cpp.

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "plugin/PluginLibrary.h"
#include "protohost/testing/MemoryTransport.h"

namespace fs = std::filesystem;
using protohost::host::checkPluginAbi;
using protohost::host::checkPluginFileSafety;
using protohost::host::PluginError;
using protohost::host::PluginLibrary;
using protohost::testing::MemoryTransport;

namespace {

const std::string kEcho = PROTOHOST_PLUGIN_DIR "/echo.so";
const std::string kBadAbi = PROTOHOST_TEST_PLUGIN_DIR "/bad_abi.so";
const std::string kUnresolved = PROTOHOST_TEST_PLUGIN_DIR "/unresolved.so";

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// "1.0" for SDK 1.0: the host's own version, as its messages print it.
const std::string kHostSdk =
    std::to_string(PROTOHOST_SDK_VERSION_MAJOR) + "." + std::to_string(PROTOHOST_SDK_VERSION_MINOR);

// The PluginError message of loading @p path (empty when it loaded).
std::string loadError(const std::string& path) {
  try {
    PluginLibrary::load(path);
  } catch (const PluginError& e) {
    return e.what();
  }
  return "";
}

/// A fresh directory under $TMPDIR, removed at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "protohost-unit-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

}  // namespace

TEST(PluginLibrary, LoadsEchoAndListsItsFactory) {
  auto lib = PluginLibrary::load(kEcho);
  ASSERT_NE(lib, nullptr);
  EXPECT_EQ(lib->path(), fs::path(kEcho).lexically_normal().string());
  EXPECT_EQ(lib->factoryNames(), std::vector<std::string>{"echo"});
  EXPECT_EQ(lib->info().magic, PROTOHOST_PLUGIN_MAGIC);
  EXPECT_EQ(lib->info().sdk_major, PROTOHOST_SDK_VERSION_MAJOR);
  EXPECT_STREQ(lib->info().compiler, PROTOHOST_COMPILER_TAG);
  EXPECT_EQ(lib->loadedFileId(), PluginLibrary::fileId(kEcho));
  EXPECT_NE(lib->loadedFileId().ino, 0u);
}

TEST(PluginLibrary, EchoFactoryBuildsAWorkingProtocol) {
  auto lib = PluginLibrary::load(kEcho);  // declared first: outlives the objects it made
  auto factory = lib->createFactory("echo");
  ASSERT_NE(factory, nullptr);
  auto protocol = factory->buildProtocol();
  ASSERT_NE(protocol, nullptr);
  MemoryTransport t;
  t.connect(*protocol);
  t.feed(*protocol, "ping\n", 2);
  EXPECT_EQ(t.value(), "ping\n");
  protocol->readEnded();
  EXPECT_TRUE(t.closed());
}

TEST(PluginLibrary, UnknownFactoryNamesTheExportedOnes) {
  auto lib = PluginLibrary::load(kEcho);
  try {
    lib->createFactory("nope");
    ADD_FAILURE() << "no PluginError";
  } catch (const PluginError& e) {
    EXPECT_EQ(std::string(e.what()), lib->path() + ": exports no factory \"nope\" (it exports: echo)");
  }
}

TEST(PluginLibrary, RelativePathIsMadeAbsolute) {
  fs::path rel = fs::relative(kEcho);
  ASSERT_TRUE(rel.is_relative());
  auto lib = PluginLibrary::load(rel.string());
  EXPECT_TRUE(fs::path(lib->path()).is_absolute());
  EXPECT_EQ(lib->path(), fs::absolute(rel).lexically_normal().string());
}

// Every load goes through a private directory holding a symlink to the
// checked descriptor (PluginLibrary.cpp): none may be left behind.
std::vector<std::string> loadAliasDirs() {
  std::vector<std::string> dirs;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::temp_directory_path(), ec))
    // This process's only: other tests (ctest -j) and hosts load plugins meanwhile.
    if (entry.path().filename().string().rfind("protohost-load-" + std::to_string(::getpid()) + "-", 0) == 0)
      dirs.push_back(entry.path().string());
  return dirs;
}

TEST(PluginLibrary, SecondLoadWorksAndLeavesNoAlias) {
  const std::vector<std::string> before = loadAliasDirs();
  auto first = PluginLibrary::load(kEcho);
  auto second = PluginLibrary::load(kEcho);
  EXPECT_EQ(second->path(), first->path());
  EXPECT_EQ(second->factoryNames(), std::vector<std::string>{"echo"});
  auto factory = second->createFactory("echo");
  EXPECT_NE(factory->buildProtocol(), nullptr);
  EXPECT_EQ(loadAliasDirs(), before);
}

// The ABI check and the dlopen read the same file: a thread keeps swapping the
// plugin path between echo.so and bad_abi.so (stale ABI, whose static
// constructor creates $PROTOHOST_TEST_CONSTRUCTOR_TRACE) while loads run.
// Loading by path again after the check would, now and then, map and so
// initialise the bad_abi.so put there after echo.so passed.
TEST(PluginLibrary, FileSwappedAfterTheCheckIsNotWhatGetsLoaded) {
  TempDir dir;
  const std::string path = dir.file("plugin.so"), trace = dir.file("constructor-ran");
  ASSERT_EQ(::symlink(fs::absolute(kEcho).c_str(), dir.file("good").c_str()), 0);
  ASSERT_EQ(::symlink(fs::absolute(kBadAbi).c_str(), dir.file("stale").c_str()), 0);
  ASSERT_EQ(::setenv("PROTOHOST_TEST_CONSTRUCTOR_TRACE", trace.c_str(), 1), 0);
  std::atomic<bool> stop{false};
  std::thread swapper([&] {
    // rename() replaces the path atomically, as an install would.
    for (bool good = true; !stop.load(); good = !good) {
      const std::string next = dir.file(good ? "next-good" : "next-stale");
      std::error_code ec;
      fs::remove(next, ec);
      fs::create_symlink(fs::absolute(good ? kEcho : kBadAbi), next, ec);
      ::rename(next.c_str(), path.c_str());
    }
  });
  int loaded = 0, refused = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < deadline && !fs::exists(trace)) {
    try {
      auto lib = PluginLibrary::load(path);  // released at once: the next load maps the file anew
      EXPECT_EQ(lib->info().sdk_major, PROTOHOST_SDK_VERSION_MAJOR);
      ++loaded;
    } catch (const PluginError&) {
      ++refused;
    }
  }
  stop = true;
  swapper.join();
  ::unsetenv("PROTOHOST_TEST_CONSTRUCTOR_TRACE");
  EXPECT_FALSE(fs::exists(trace)) << "a stale plugin's static constructor ran after " << loaded << " loads and "
                                  << refused << " refusals";
  EXPECT_GT(loaded, 0);
  EXPECT_GT(refused, 0);
}

TEST(PluginLibrary, StaleAbiIsRefusedNamingBothVersions) {
  std::string error = loadError(kBadAbi);
  EXPECT_TRUE(contains(error, "built against SDK 0.")) << error;
  EXPECT_TRUE(contains(error, "built against SDK 0.9, host SDK is " + kHostSdk)) << error;
  EXPECT_EQ(error.rfind(fs::path(kBadAbi).lexically_normal().string() + ": ", 0), 0u) << error;
}

// Issue 9 item 7: the record is checked before the plugin is mapped, so none of
// its code runs. bad_abi.so's static constructor creates the file named by
// PROTOHOST_TEST_CONSTRUCTOR_TRACE; after the refusal it must not exist.
TEST(PluginLibrary, StaleAbiIsRefusedBeforeAnyOfItsCodeRuns) {
  TempDir dir;
  const std::string trace = dir.file("constructor-ran");
  ASSERT_EQ(::setenv("PROTOHOST_TEST_CONSTRUCTOR_TRACE", trace.c_str(), 1), 0);
  std::string error = loadError(kBadAbi);
  EXPECT_TRUE(contains(error, "built against SDK 0.9, host SDK is " + kHostSdk)) << error;
  EXPECT_FALSE(fs::exists(trace)) << "bad_abi.so's static constructor ran before the refusal";
  // The trace works: mapping the file runs the constructor.
  void* handle = ::dlopen(kBadAbi.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << ::dlerror();
  EXPECT_TRUE(fs::exists(trace)) << "the fixture's constructor trace is broken: the test above proves nothing";
  ::dlclose(handle);
  ::unsetenv("PROTOHOST_TEST_CONSTRUCTOR_TRACE");
}

TEST(PluginLibrary, UndefinedSymbolIsRefusedWithTheLoadersText) {
  std::string error = loadError(kUnresolved);
  EXPECT_TRUE(contains(error, "undefined symbol")) << error;
  EXPECT_TRUE(contains(error, "protohost_fixture_function_defined_nowhere")) << error;
  EXPECT_TRUE(contains(error, ": cannot load: ")) << error;
}

TEST(PluginLibrary, NonElfFileIsRefusedWithAReason) {
  TempDir dir;
  writeFile(dir.file("notelf.so"),
            "This is a text file named like a plugin. It is long enough to fill an ELF header and more.\n");
  std::string error = loadError(dir.file("notelf.so"));
  EXPECT_EQ(error, dir.file("notelf.so") + ": cannot load: invalid ELF header (not an ELF file)");

  writeFile(dir.file("short.so"), "\x7f" "EL");
  EXPECT_EQ(loadError(dir.file("short.so")), dir.file("short.so") + ": cannot load: file too short");
}

TEST(PluginLibrary, MissingFile) {
  TempDir dir;
  EXPECT_EQ(loadError(dir.file("absent.so")), dir.file("absent.so") + ": plugin file not found");
}

TEST(PluginLibrary, SharedObjectWithoutAbiRecordIsRefused) {
  // Any system library is a loadable ELF object without protohost_plugin_info.
  std::string libm;
  for (const char* candidate : {"/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6",
                                "/lib/aarch64-linux-gnu/libm.so.6", "/usr/lib/aarch64-linux-gnu/libm.so.6"})
    if (fs::exists(candidate)) libm = candidate;
  if (libm.empty()) GTEST_SKIP() << "no libm.so.6 at a known path";
  std::string error = loadError(libm);
  EXPECT_TRUE(contains(error, "not a protohost plugin (no protohost_plugin_info record")) << error;
}

// ---- checkPluginAbi ----

namespace {
ProtohostPluginInfo goodInfo() {
  return ProtohostPluginInfo{PROTOHOST_PLUGIN_MAGIC,
                             static_cast<std::uint32_t>(sizeof(ProtohostPluginInfo)),
                             PROTOHOST_SDK_VERSION_MAJOR,
                             PROTOHOST_SDK_VERSION_MINOR,
                             PROTOHOST_CXX11_ABI,
                             static_cast<std::uint32_t>(sizeof(void*)),
                             PROTOHOST_COMPILER_TAG};
}
}  // namespace

TEST(CheckPluginAbi, MatchingRecordIsAccepted) { EXPECT_EQ(checkPluginAbi(goodInfo()), ""); }

TEST(CheckPluginAbi, BadMagic) {
  auto info = goodInfo();
  info.magic = 0x464c457fu;  // "\x7f" "ELF"
  EXPECT_EQ(checkPluginAbi(info), "not a protohost plugin (bad magic in protohost_plugin_info)");
}

TEST(CheckPluginAbi, RecordTooSmall) {
  auto info = goodInfo();
  info.struct_size = 16;
  EXPECT_EQ(checkPluginAbi(info), "ABI record too small (16 bytes): built against an older SDK");
}

TEST(CheckPluginAbi, LargerRecordFromTheSameMajorIsAccepted) {
  auto info = goodInfo();
  info.struct_size += 16;  // appended fields the host does not know yet
  EXPECT_EQ(checkPluginAbi(info), "");
}

TEST(CheckPluginAbi, OtherSdkMajorIsRefused) {
  auto info = goodInfo();
  info.sdk_major = 0;
  info.sdk_minor = 9;
  EXPECT_EQ(checkPluginAbi(info), "built against SDK 0.9, host SDK is " + kHostSdk);
  info.sdk_major = PROTOHOST_SDK_VERSION_MAJOR + 1;
  info.sdk_minor = 0;
  EXPECT_EQ(checkPluginAbi(info), "built against SDK " + std::to_string(PROTOHOST_SDK_VERSION_MAJOR + 1) +
                                      ".0, host SDK is " + kHostSdk);
}

TEST(CheckPluginAbi, NewerSdkMinorIsRefused) {
  auto info = goodInfo();
  info.sdk_minor = PROTOHOST_SDK_VERSION_MINOR + 1;
  EXPECT_EQ(checkPluginAbi(info), "built against SDK " + std::to_string(PROTOHOST_SDK_VERSION_MAJOR) + "." +
                                      std::to_string(PROTOHOST_SDK_VERSION_MINOR + 1) + ", host SDK is " + kHostSdk);
}

TEST(CheckPluginAbi, OlderOrSameSdkMinorIsAccepted) {
  auto info = goodInfo();
  for (int minor = 0; minor <= PROTOHOST_SDK_VERSION_MINOR; ++minor) {
    info.sdk_minor = static_cast<std::uint16_t>(minor);
    EXPECT_EQ(checkPluginAbi(info), "") << "plugin SDK minor " << minor;
  }
}

TEST(CheckPluginAbi, PointerSize) {
  auto info = goodInfo();
  info.pointer_size = 4;
  EXPECT_EQ(checkPluginAbi(info), "built for 32-bit pointers, host is " + std::to_string(sizeof(void*) * 8) + "-bit");
}

TEST(CheckPluginAbi, Cxx11AbiMismatch) {
  auto info = goodInfo();
  info.cxx11_abi = PROTOHOST_CXX11_ABI == 1 ? 0 : 1;
  EXPECT_EQ(checkPluginAbi(info), "built with _GLIBCXX_USE_CXX11_ABI=" + std::to_string(info.cxx11_abi) +
                                      ", host uses " + std::to_string(PROTOHOST_CXX11_ABI) +
                                      " (not binary compatible)");
}

TEST(CheckPluginAbi, CompilerTagMismatch) {
  auto info = goodInfo();
  info.compiler = "clang-99";
  EXPECT_EQ(checkPluginAbi(info), "built with clang-99, host with " PROTOHOST_COMPILER_TAG " (not binary compatible)");
  info.compiler = nullptr;
  EXPECT_EQ(checkPluginAbi(info),
            "built with an unknown compiler, host with " PROTOHOST_COMPILER_TAG " (not binary compatible)");
}

TEST(CheckPluginAbi, FirstMismatchIsReported) {
  auto info = goodInfo();
  info.sdk_major = 0;
  info.compiler = "clang-99";
  EXPECT_EQ(checkPluginAbi(info).rfind("built against SDK 0.", 0), 0u);
}

// ---- checkPluginFileSafety ----

TEST(PluginFileSafety, OwnFileInPrivateDirectoryIsSafe) {
  TempDir dir;
  writeFile(dir.file("p.so"), "x");
  ::chmod(dir.file("p.so").c_str(), 0644);
  EXPECT_EQ(checkPluginFileSafety(dir.file("p.so"), ::geteuid()), "");
}

TEST(PluginFileSafety, GroupOrWorldWritableFileIsRefused) {
  TempDir dir;
  writeFile(dir.file("p.so"), "x");
  const std::string real = fs::canonical(dir.file("p.so")).string();
  ::chmod(dir.file("p.so").c_str(), 0664);
  EXPECT_EQ(checkPluginFileSafety(dir.file("p.so"), ::geteuid()),
            "refusing unsafe plugin: file " + real + " is writable by group (mode 0664; chmod go-w)");
  ::chmod(dir.file("p.so").c_str(), 0646);
  EXPECT_EQ(checkPluginFileSafety(dir.file("p.so"), ::geteuid()),
            "refusing unsafe plugin: file " + real + " is writable by others (mode 0646; chmod go-w)");
}

TEST(PluginFileSafety, WritableDirectoryIsRefused) {
  TempDir dir;
  writeFile(dir.file("p.so"), "x");
  ::chmod(dir.file("p.so").c_str(), 0644);
  ::chmod(dir.path().c_str(), 0777);
  EXPECT_EQ(checkPluginFileSafety(dir.file("p.so"), ::geteuid()),
            "refusing unsafe plugin: directory " + fs::canonical(dir.path()).string() +
                " is writable by others (mode 0777; chmod go-w)");
}

TEST(PluginFileSafety, FileOwnedByAnotherUserIsRefused) {
  TempDir dir;
  writeFile(dir.file("p.so"), "x");
  ::chmod(dir.file("p.so").c_str(), 0644);
  const std::string real = fs::canonical(dir.file("p.so")).string();
  unsigned owner = ::geteuid();
  unsigned service = owner + 1;
  if (owner == 0) {  // root owns everything it creates, and root is always accepted: hand the file away
    ASSERT_EQ(::chown(dir.file("p.so").c_str(), 4242, static_cast<gid_t>(-1)), 0);
    owner = 4242;
    service = 0;
  }
  EXPECT_EQ(checkPluginFileSafety(dir.file("p.so"), service),
            "refusing unsafe plugin: file " + real + " is owned by uid " + std::to_string(owner) +
                " (must be root or the service user, uid " + std::to_string(service) + ")");
}
