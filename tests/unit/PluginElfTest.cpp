// Reading a plugin's ABI record from its ELF file (host/src/PluginElf.h):
// against the real built plugins (the record must equal what the dynamic
// loader maps), and truncated, corrupted and random files (a system library
// without a record: PluginLibraryTest), which must be refused with a reason and never read outside
// the file (run under ASan in CI).

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "plugin/PluginElf.h"

namespace fs = std::filesystem;
using protohost::host::FileSource;
using protohost::host::MemorySource;
using protohost::host::PluginElfError;
using protohost::host::PluginElfInfo;
using protohost::host::readPluginElf;

namespace {

const std::string kEcho = PROTOHOST_PLUGIN_DIR "/echo.so";

std::string readBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Every plugin the build ships (build/plugins) and the test-only ones.
std::vector<std::string> builtPlugins() {
  std::vector<std::string> all;
  for (const char* dir : {PROTOHOST_PLUGIN_DIR, PROTOHOST_TEST_PLUGIN_DIR})
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.path().extension() == ".so") all.push_back(entry.path().string());
  return all;
}

// readPluginElf on @p bytes: "" when it read a record, else the error text (never empty).
std::string errorOf(std::string_view bytes, PluginElfInfo* info = nullptr) {
  PluginElfInfo out;
  std::optional<PluginElfError> error = readPluginElf(MemorySource(bytes), out);
  if (info) *info = out;
  if (!error) return "";
  return error->text.empty() ? "<error with no text>" : error->text;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Field access on a copy of a real file, for targeted corruption.
struct Image {
  std::string bytes;
  Elf64_Ehdr header() const {
    Elf64_Ehdr h;
    std::memcpy(&h, bytes.data(), sizeof h);
    return h;
  }
  void setHeader(const Elf64_Ehdr& h) { std::memcpy(bytes.data(), &h, sizeof h); }
  Elf64_Shdr section(std::size_t i) const {
    Elf64_Shdr s;
    std::memcpy(&s, bytes.data() + header().e_shoff + i * sizeof s, sizeof s);
    return s;
  }
  void setSection(std::size_t i, const Elf64_Shdr& s) {
    std::memcpy(bytes.data() + header().e_shoff + i * sizeof s, &s, sizeof s);
  }
  std::size_t sectionOfType(std::uint32_t type) const {
    for (std::size_t i = 0; i < header().e_shnum; ++i)
      if (section(i).sh_type == type) return i;
    return 0;
  }
};

}  // namespace

TEST(PluginElf, RecordOfEveryBuiltPluginMatchesTheMappedOne) {
  const std::vector<std::string> plugins = builtPlugins();
  ASSERT_GE(plugins.size(), 5u);
  for (const auto& path : plugins) {
    SCOPED_TRACE(path);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    PluginElfInfo info;
    std::optional<PluginElfError> error = readPluginElf(FileSource(fd), info);
    ::close(fd);
    ASSERT_FALSE(error.has_value()) << error->text;
    ASSERT_TRUE(info.compiler.has_value());
    EXPECT_EQ(*info.compiler, PROTOHOST_COMPILER_TAG);
    EXPECT_EQ(info.record.magic, PROTOHOST_PLUGIN_MAGIC);
    EXPECT_EQ(info.record.struct_size, sizeof(ProtohostPluginInfo));
    EXPECT_EQ(info.record.compiler, nullptr);
    EXPECT_STREQ(info.abiRecord().compiler, PROTOHOST_COMPILER_TAG);
    // The same bytes as the dynamic loader maps (where it can map the file at all).
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) continue;  // unresolved.so
    const auto* mapped = static_cast<const ProtohostPluginInfo*>(::dlsym(handle, "protohost_plugin_info"));
    ASSERT_NE(mapped, nullptr);
    EXPECT_EQ(info.record.sdk_major, mapped->sdk_major);
    EXPECT_EQ(info.record.sdk_minor, mapped->sdk_minor);
    EXPECT_EQ(info.record.cxx11_abi, mapped->cxx11_abi);
    EXPECT_EQ(info.record.pointer_size, mapped->pointer_size);
    EXPECT_STREQ(info.abiRecord().compiler, mapped->compiler);
    ::dlclose(handle);
  }
}

TEST(PluginElf, StaleRecordIsReadAsStored) {
  PluginElfInfo info;
  ASSERT_EQ(errorOf(readBytes(PROTOHOST_TEST_PLUGIN_DIR "/bad_abi.so"), &info), "");
  EXPECT_EQ(info.record.sdk_major, 0);
  EXPECT_EQ(info.record.sdk_minor, 9);
}

// Item 6 of issue 9: a GNU unique symbol makes the dynamic loader mark the
// library NODELETE, so a plugin replaced on disk would stay mapped until exit.
TEST(PluginElf, NoBuiltPluginHasGnuUniqueSymbols) {
  for (const auto& path : builtPlugins()) {
    PluginElfInfo info;
    ASSERT_EQ(errorOf(readBytes(path), &info), "") << path;
    std::string names;
    for (const auto& n : info.uniqueSymbols) names += " " + n;
    EXPECT_TRUE(info.uniqueSymbols.empty()) << path << " has GNU unique symbols (never unloaded):" << names;
  }
}

TEST(PluginElf, NotElfAndTooShort) {
  EXPECT_EQ(errorOf(""), "file too short");
  EXPECT_EQ(errorOf("\x7f" "EL"), "file too short");
  EXPECT_EQ(errorOf("tiny"), "invalid ELF header (not an ELF file)");
  EXPECT_EQ(errorOf(std::string(4096, 'x')), "invalid ELF header (not an ELF file)");
  EXPECT_EQ(errorOf(readBytes(kEcho).substr(0, 40)), "file too short");
}

// Every prefix of a real plugin: the section headers sit at the end, so each
// one is refused, with a reason.
TEST(PluginElf, EveryTruncationIsRefused) {
  const std::string echo = readBytes(kEcho);
  ASSERT_GT(echo.size(), 4096u);
  for (std::size_t n = 0; n < echo.size(); ++n) {
    const std::string error = errorOf(std::string_view(echo).substr(0, n));
    if (error.empty()) FAIL() << "a prefix of " << n << " of " << echo.size() << " bytes was read as a plugin";
  }
}

TEST(PluginElf, CorruptedHeadersAreRefusedWithAReason) {
  const Image echo{readBytes(kEcho)};
  ASSERT_EQ(errorOf(echo.bytes), "");
  auto withHeader = [&](auto change) {
    Image copy = echo;
    Elf64_Ehdr h = copy.header();
    change(h);
    copy.setHeader(h);
    return errorOf(copy.bytes);
  };
  EXPECT_EQ(withHeader([](Elf64_Ehdr& h) { h.e_ident[EI_CLASS] = ELFCLASS32; }),
            "wrong ELF class: ELFCLASS32 (the host is 64-bit)");
  EXPECT_EQ(withHeader([](Elf64_Ehdr& h) { h.e_ident[EI_DATA] = h.e_ident[EI_DATA] == ELFDATA2LSB ? ELFDATA2MSB : ELFDATA2LSB; }),
            "ELF file of the other byte order");
  EXPECT_EQ(withHeader([](Elf64_Ehdr& h) { h.e_type = ET_EXEC; }), "not a shared object (ELF type 2)");
  EXPECT_TRUE(contains(withHeader([](Elf64_Ehdr& h) { h.e_machine = EM_RISCV; }), "built for another machine (ELF machine 243"));
  EXPECT_EQ(withHeader([](Elf64_Ehdr& h) { h.e_shoff = ~0ull - 10; }), "malformed ELF file: section header table outside the file");
  EXPECT_EQ(withHeader([](Elf64_Ehdr& h) { h.e_shnum = 0xffff; }), "malformed ELF file: section header table outside the file");
  EXPECT_EQ(withHeader([](Elf64_Ehdr& h) { h.e_shentsize = 40; }), "malformed ELF file: section header size 40");
  EXPECT_EQ(withHeader([&](Elf64_Ehdr& h) { h.e_phoff = echo.bytes.size() - 8; }),
            "malformed ELF file: program header table outside the file");
  EXPECT_TRUE(contains(withHeader([](Elf64_Ehdr& h) { h.e_shoff = 0; }), "no section headers"));

  auto withSection = [&](std::uint32_t type, auto change) {
    Image copy = echo;
    const std::size_t i = copy.sectionOfType(type);
    EXPECT_NE(i, 0u);
    Elf64_Shdr s = copy.section(i);
    change(s);
    copy.setSection(i, s);
    return errorOf(copy.bytes);
  };
  EXPECT_EQ(withSection(SHT_DYNSYM, [](Elf64_Shdr& s) { s.sh_link = 0xffff; }), "malformed ELF file: dynamic string table");
  EXPECT_EQ(withSection(SHT_DYNSYM, [](Elf64_Shdr& s) { s.sh_entsize = 16; }), "malformed ELF file: dynamic symbol table");
  EXPECT_EQ(withSection(SHT_DYNSYM, [](Elf64_Shdr& s) { s.sh_offset = ~0ull - 100; }), "malformed ELF file: dynamic symbol table");
  EXPECT_EQ(withSection(SHT_DYNSYM, [](Elf64_Shdr& s) { s.sh_size = 1ull << 62; }), "malformed ELF file: dynamic symbol table");
  EXPECT_EQ(withSection(SHT_DYNSYM, [](Elf64_Shdr& s) { s.sh_type = SHT_PROGBITS; }),
            "not a protohost plugin (no protohost_plugin_info record; use PROTOHOST_EXPORT_FACTORY)");
  // The string table ends after its first byte: every name points outside it, or is not terminated.
  EXPECT_EQ(withSection(SHT_STRTAB, [](Elf64_Shdr& s) { s.sh_size = 1; }),
            "malformed ELF file: symbol name outside the dynamic string table");
  // Loadable segments that hold none of the file: the record's address maps to no file bytes.
  {
    Image copy = echo;
    const Elf64_Ehdr h = copy.header();
    for (std::size_t i = 0; i < h.e_phnum; ++i) {
      Elf64_Phdr p;
      std::memcpy(&p, copy.bytes.data() + h.e_phoff + i * sizeof p, sizeof p);
      p.p_filesz = 0;
      std::memcpy(copy.bytes.data() + h.e_phoff + i * sizeof p, &p, sizeof p);
    }
    EXPECT_EQ(errorOf(copy.bytes), "malformed ELF file: protohost_plugin_info is not in the file's loaded bytes");
  }
}

// Random bytes flipped in the headers and tables of a real plugin, and random
// files: every outcome is a record or a reason, never a crash or a read outside
// the buffer (ASan). Deterministic: a fixed seed.
TEST(PluginElf, RandomCorruptionIsHandled) {
  const Image echo{readBytes(kEcho)};
  const Elf64_Ehdr h = echo.header();
  std::vector<std::pair<std::size_t, std::size_t>> regions{{0, sizeof(Elf64_Ehdr)},
                                                          {h.e_phoff, h.e_phnum * sizeof(Elf64_Phdr)},
                                                          {h.e_shoff, h.e_shnum * sizeof(Elf64_Shdr)}};
  for (std::uint32_t type : {SHT_DYNSYM, SHT_STRTAB, SHT_RELA}) {
    const Elf64_Shdr s = echo.section(echo.sectionOfType(type));
    regions.emplace_back(s.sh_offset, s.sh_size);
  }
  std::mt19937_64 rng(20240609);
  int refused = 0;
  for (int round = 0; round < 4000; ++round) {
    Image copy = echo;
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int f = 0; f < flips; ++f) {
      const auto& [begin, length] = regions[rng() % regions.size()];
      copy.bytes[begin + rng() % length] = static_cast<char>(rng());
    }
    refused += !errorOf(copy.bytes).empty();
  }
  EXPECT_GT(refused, 0);
  for (int round = 0; round < 500; ++round) {
    std::string noise(64 + rng() % 4096, '\0');
    for (auto& c : noise) c = static_cast<char>(rng());
    if (round % 2) std::memcpy(noise.data(), echo.bytes.data(), sizeof(Elf64_Ehdr));  // a valid header over noise
    EXPECT_NE(errorOf(noise), "") << "round " << round;
  }
}
