#include "plugin/PluginElf.h"

#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace protohost::host {

static_assert(sizeof(void*) == 8, "the plugin ELF reader reads ELF64 files: port it before building a 32-bit host");

bool MemorySource::read(std::uint64_t offset, void* dst, std::size_t n) const {
  if (offset > bytes_.size() || n > bytes_.size() - offset) return false;
  std::memcpy(dst, bytes_.data() + offset, n);
  return true;
}

FileSource::FileSource(int fd) : fd_(fd) {
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) size_ = static_cast<std::uint64_t>(st.st_size);
}

bool FileSource::read(std::uint64_t offset, void* dst, std::size_t n) const {
  if (offset > size_ || n > size_ - offset) return false;
  auto* out = static_cast<char*>(dst);
  while (n > 0) {
    ssize_t got = ::pread(fd_, out, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;  // error, or the file shrank since fstat
    out += got;
    offset += static_cast<std::uint64_t>(got);
    n -= static_cast<std::size_t>(got);
  }
  return true;
}

namespace {

#if defined(__x86_64__)
constexpr unsigned kMachine = EM_X86_64;
constexpr std::uint32_t kRelative = R_X86_64_RELATIVE, kAbs64 = R_X86_64_64, kGlobDat = R_X86_64_GLOB_DAT;
#elif defined(__aarch64__)
constexpr unsigned kMachine = EM_AARCH64;
constexpr std::uint32_t kRelative = R_AARCH64_RELATIVE, kAbs64 = R_AARCH64_ABS64, kGlobDat = R_AARCH64_GLOB_DAT;
#else
#error "the plugin ELF reader knows the relocations of x86-64 and AArch64 only"
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr unsigned char kByteOrder = ELFDATA2LSB;
#else
constexpr unsigned char kByteOrder = ELFDATA2MSB;
#endif

// No table of a plugin comes near this; a file claiming more is refused rather than read.
constexpr std::uint64_t kMaxTableBytes = 64ull << 20;
// The compiler tag is a short literal ("gcc-12"); a longer "string" is not one.
constexpr std::size_t kMaxCompilerTag = 64;

using Error = std::optional<PluginElfError>;

Error notLoadable(std::string text) { return PluginElfError{PluginElfError::Kind::NotLoadable, std::move(text)}; }
Error malformed(const std::string& what) { return notLoadable("malformed ELF file: " + what); }
Error noRecord(std::string text) { return PluginElfError{PluginElfError::Kind::NoRecord, std::move(text)}; }

// A table of @p count entries of type T at @p offset, read whole.
template <class T>
bool readTable(const ByteSource& src, std::uint64_t offset, std::uint64_t count, std::vector<T>& out) {
  if (count > kMaxTableBytes / sizeof(T)) return false;
  out.resize(static_cast<std::size_t>(count));
  return count == 0 || src.read(offset, out.data(), out.size() * sizeof(T));
}

// The NUL-terminated name at @p offset of a string table, or nullopt.
std::optional<std::string_view> nameAt(const std::vector<char>& table, std::uint64_t offset) {
  if (offset >= table.size()) return std::nullopt;
  const char* begin = table.data() + offset;
  const void* nul = std::memchr(begin, '\0', table.size() - offset);
  if (!nul) return std::nullopt;
  return std::string_view(begin, static_cast<std::size_t>(static_cast<const char*>(nul) - begin));
}

class ElfImage {
 public:
  explicit ElfImage(const ByteSource& src) : src_(src) {}

  Error open() {
    unsigned char ident[EI_NIDENT] = {};
    const std::uint64_t size = src_.size();
    if (size < SELFMAG || !src_.read(0, ident, SELFMAG)) return notLoadable("file too short");
    if (std::memcmp(ident, ELFMAG, SELFMAG) != 0) return notLoadable("invalid ELF header (not an ELF file)");
    if (!src_.read(0, &header_, sizeof header_)) return notLoadable("file too short");
    const unsigned char* id = header_.e_ident;
    if (id[EI_CLASS] != ELFCLASS64)
      return notLoadable("wrong ELF class: ELFCLASS" + std::string(id[EI_CLASS] == ELFCLASS32 ? "32" : "NONE") +
                         " (the host is 64-bit)");
    if (id[EI_DATA] != kByteOrder) return notLoadable("ELF file of the other byte order");
    if (header_.e_type != ET_DYN) return notLoadable("not a shared object (ELF type " + std::to_string(header_.e_type) + ")");
    if (header_.e_machine != kMachine)
      return notLoadable("built for another machine (ELF machine " + std::to_string(header_.e_machine) + ", host is " +
                         std::to_string(kMachine) + ")");
    if (Error e = readSections()) return e;
    return readSegments();
  }

  const std::vector<Elf64_Shdr>& sections() const { return sections_; }

  // The contents of section @p index.
  template <class T>
  bool contents(const Elf64_Shdr& s, std::vector<T>& out) const {
    if (s.sh_type == SHT_NOBITS || s.sh_size % sizeof(T) != 0) return false;
    return readTable(src_, s.sh_offset, s.sh_size / sizeof(T), out);
  }

  // Copies @p n bytes at virtual address @p addr, from the file bytes of one PT_LOAD segment.
  bool readAt(std::uint64_t addr, void* dst, std::size_t n) const {
    std::uint64_t offset;
    return fileOffset(addr, n, offset) && src_.read(offset, dst, n);
  }

  // The NUL-terminated string at @p addr (at most kMaxCompilerTag bytes), or nullopt.
  std::optional<std::string> stringAt(std::uint64_t addr) const {
    std::string s;
    for (std::size_t i = 0; i < kMaxCompilerTag; ++i) {
      char c;
      if (addr > UINT64_MAX - i || !readAt(addr + i, &c, 1)) return std::nullopt;
      if (c == '\0') return s;
      s.push_back(c);
    }
    return std::nullopt;
  }

 private:
  Error readSections() {
    if (header_.e_shoff == 0) return noRecord("not a protohost plugin (no section headers: cannot find its protohost_plugin_info record)");
    if (header_.e_shentsize != sizeof(Elf64_Shdr)) return malformed("section header size " + std::to_string(header_.e_shentsize));
    std::uint64_t count = header_.e_shnum;
    if (count == 0) {  // extended numbering: the real count is in section 0
      Elf64_Shdr first{};
      if (!src_.read(header_.e_shoff, &first, sizeof first)) return malformed("section header table outside the file");
      count = first.sh_size;
    }
    if (!readTable(src_, header_.e_shoff, count, sections_)) return malformed("section header table outside the file");
    return std::nullopt;
  }

  Error readSegments() {
    if (header_.e_phentsize != sizeof(Elf64_Phdr)) return malformed("program header size " + std::to_string(header_.e_phentsize));
    std::uint64_t count = header_.e_phnum;
    if (count == PN_XNUM) count = sections_.empty() ? 0 : sections_[0].sh_info;
    if (!readTable(src_, header_.e_phoff, count, segments_)) return malformed("program header table outside the file");
    return std::nullopt;
  }

  bool fileOffset(std::uint64_t addr, std::uint64_t n, std::uint64_t& offset) const {
    for (const auto& p : segments_) {
      if (p.p_type != PT_LOAD || addr < p.p_vaddr) continue;
      const std::uint64_t into = addr - p.p_vaddr;
      if (into > p.p_filesz || n > p.p_filesz - into || p.p_offset > UINT64_MAX - into) continue;
      offset = p.p_offset + into;
      return true;
    }
    return false;
  }

  const ByteSource& src_;
  Elf64_Ehdr header_{};
  std::vector<Elf64_Shdr> sections_;
  std::vector<Elf64_Phdr> segments_;
};

// Where the 8-byte pointer at @p slot points once relocated, when the file says.
std::optional<std::uint64_t> relocatedPointer(const ElfImage& elf, const std::vector<Elf64_Sym>& symbols, std::uint64_t slot) {
  for (const auto& s : elf.sections()) {
    if (s.sh_type != SHT_RELA || s.sh_entsize != sizeof(Elf64_Rela)) continue;
    std::vector<Elf64_Rela> relocations;
    if (!elf.contents(s, relocations)) continue;
    for (const auto& r : relocations) {
      if (r.r_offset != slot) continue;
      const std::uint32_t type = ELF64_R_TYPE(r.r_info);
      const std::uint64_t index = ELF64_R_SYM(r.r_info);
      if (type == kRelative) return static_cast<std::uint64_t>(r.r_addend);
      if ((type == kAbs64 || type == kGlobDat) && index < symbols.size() && symbols[index].st_shndx != SHN_UNDEF)
        return symbols[index].st_value + static_cast<std::uint64_t>(r.r_addend);
      return std::nullopt;  // bound to something outside the file
    }
  }
  // No RELA entry: the value is in place (REL or RELR relocations, or a fixed address).
  std::uint64_t value = 0;
  if (!elf.readAt(slot, &value, sizeof value)) return std::nullopt;
  return value;
}

}  // namespace

std::optional<PluginElfError> readPluginElf(const ByteSource& source, PluginElfInfo& out) {
  out = PluginElfInfo{};
  ElfImage elf(source);
  if (Error e = elf.open()) return e;

  const auto& sections = elf.sections();
  const Elf64_Shdr* dynsym = nullptr;
  for (const auto& s : sections)
    if (s.sh_type == SHT_DYNSYM) dynsym = &s;
  const std::string noRecordText = "not a protohost plugin (no protohost_plugin_info record; use PROTOHOST_EXPORT_FACTORY)";
  if (!dynsym) return noRecord(noRecordText);
  std::vector<Elf64_Sym> symbols;
  if (dynsym->sh_entsize != sizeof(Elf64_Sym) || !elf.contents(*dynsym, symbols)) return malformed("dynamic symbol table");
  std::vector<char> names;
  if (dynsym->sh_link >= sections.size() || sections[dynsym->sh_link].sh_type != SHT_STRTAB ||
      !elf.contents(sections[dynsym->sh_link], names))
    return malformed("dynamic string table");

  const Elf64_Sym* record = nullptr;
  for (const auto& sym : symbols) {
    if (sym.st_shndx == SHN_UNDEF) continue;
    std::optional<std::string_view> name = nameAt(names, sym.st_name);
    if (!name) return malformed("symbol name outside the dynamic string table");
    if (ELF64_ST_BIND(sym.st_info) == STB_GNU_UNIQUE) out.uniqueSymbols.emplace_back(*name);
    const unsigned bind = ELF64_ST_BIND(sym.st_info);
    if (!record && *name == kPluginInfoSymbol && (bind == STB_GLOBAL || bind == STB_WEAK)) record = &sym;
  }
  if (!record) return noRecord(noRecordText);

  constexpr std::size_t kHead = offsetof(ProtohostPluginInfo, struct_size) + sizeof(std::uint32_t);
  if (record->st_size < kHead)
    return noRecord("not a protohost plugin (protohost_plugin_info is " + std::to_string(record->st_size) + " bytes)");
  const std::size_t n = record->st_size < sizeof(ProtohostPluginInfo) ? static_cast<std::size_t>(record->st_size)
                                                                       : sizeof(ProtohostPluginInfo);
  if (!elf.readAt(record->st_value, &out.record, n)) return malformed("protohost_plugin_info is not in the file's loaded bytes");
  out.record.compiler = nullptr;  // an address in the file, not in this process
  if (out.record.struct_size > record->st_size) out.record.struct_size = static_cast<std::uint32_t>(record->st_size);
  constexpr std::size_t kCompilerAt = offsetof(ProtohostPluginInfo, compiler);
  if (n >= kCompilerAt + sizeof(std::uint64_t) && record->st_value <= UINT64_MAX - kCompilerAt) {
    if (std::optional<std::uint64_t> tag = relocatedPointer(elf, symbols, record->st_value + kCompilerAt); tag && *tag)
      out.compiler = elf.stringAt(*tag);
  }
  return std::nullopt;
}

}  // namespace protohost::host
