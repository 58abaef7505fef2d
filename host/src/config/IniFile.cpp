#include "config/IniFile.h"

#include <algorithm>

namespace protohost::host {
namespace {

std::string trim(const std::string& s) {
  const char* ws = " \t\r\f\v";
  auto b = s.find_first_not_of(ws);
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

bool validName(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-' || c == '.';
  });
}

}  // namespace

const IniSection* IniFile::find(const std::string& name) const {
  for (const auto& s : sections)
    if (s.name == name) return &s;
  return nullptr;
}

IniFile parseIni(const std::string& path, const std::string& text, std::vector<std::string>& errors) {
  IniFile ini;
  ini.path = path;
  auto error = [&](int line, const std::string& key, const std::string& what) {
    errors.push_back(path + ":" + std::to_string(line) + ": " + key + ": " + what);
  };
  IniSection* current = nullptr;
  bool skipping = false;  // inside a rejected duplicate section
  int lineNo = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string raw = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++lineNo;
    if (nl == text.size() && raw.empty()) break;
    std::string line = trim(raw);
    if (line.empty() || line[0] == ';' || line[0] == '#') continue;
    if (line.find('\0') != std::string::npos) {
      error(lineNo, "-", "NUL byte in line");
      continue;
    }
    if (line[0] == '[') {
      if (line.back() != ']') {
        error(lineNo, line, "section header must end with ']'");
        current = nullptr;
        skipping = true;
        continue;
      }
      std::string name = trim(line.substr(1, line.size() - 2));
      if (!validName(name)) {
        error(lineNo, "[" + name + "]", "invalid section name (letters, digits, '_', '-', '.')");
        current = nullptr;
        skipping = true;
        continue;
      }
      if (const IniSection* prev = ini.find(name)) {
        error(lineNo, "[" + name + "]",
              "duplicate section (first defined at line " + std::to_string(prev->line) + ")");
        current = nullptr;
        skipping = true;
        continue;
      }
      ini.sections.push_back(IniSection{name, lineNo, {}});
      current = &ini.sections.back();
      skipping = false;
      continue;
    }
    auto eq = line.find('=');
    if (eq == std::string::npos) {
      error(lineNo, line.substr(0, 40), "expected \"key = value\"");
      continue;
    }
    std::string key = trim(line.substr(0, eq));
    std::string value = trim(line.substr(eq + 1));
    if (!validName(key)) {
      error(lineNo, key.empty() ? "-" : key, "invalid key name (letters, digits, '_', '-', '.')");
      continue;
    }
    if (skipping) continue;
    if (!current) {
      error(lineNo, key, "key outside of any [section]");
      continue;
    }
    auto [it, inserted] = current->entries.emplace(key, ConfigView::Entry{value, lineNo});
    if (!inserted)
      error(lineNo, key,
            "duplicate key in [" + current->name + "] (first set at line " +
                std::to_string(it->second.line) + ")");
  }
  return ini;
}

}  // namespace protohost::host
