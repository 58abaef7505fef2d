#pragma once
// A strict INI reader that remembers line numbers. Unlike Poco's reader it
// rejects duplicate sections and keys and lines it cannot read, so every
// problem is reported as "FILE:LINE: KEY: what is wrong".
//
// Syntax: "[section]", "key = value", blank lines, and whole-line comments
// starting with ';' or '#'. There are no inline comments: "a = b ; c" has the
// value "b ; c".

#include <map>
#include <string>
#include <vector>

#include "protohost/ConfigView.h"

namespace protohost::host {

struct IniSection {
  std::string name;
  int line = 0;
  std::map<std::string, ConfigView::Entry> entries;
};

struct IniFile {
  std::string path;  // as given, used in messages
  std::vector<IniSection> sections;

  const IniSection* find(const std::string& name) const;
};

/// Parses @p text (the contents of @p path). Appends one message per problem to
/// @p errors; the result holds everything that did parse.
IniFile parseIni(const std::string& path, const std::string& text, std::vector<std::string>& errors);

}  // namespace protohost::host
