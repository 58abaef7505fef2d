// The strict INI reader (host/src/config/IniFile.h): every problem as "FILE:LINE: KEY: what".

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/IniFile.h"

using protohost::host::IniFile;
using protohost::host::parseIni;

namespace {
using Errors = std::vector<std::string>;

IniFile parse(const std::string& text, Errors& errors) { return parseIni("host.ini", text, errors); }

IniFile parseClean(const std::string& text) {
  Errors errors;
  IniFile ini = parse(text, errors);
  EXPECT_EQ(errors, Errors{});
  return ini;
}
}  // namespace

TEST(IniFile, SectionsKeysValuesAndLineNumbers) {
  IniFile ini = parseClean(
      "[host]\n"                      // 1
      "plugins_dir =  /opt/plugins \n"  // 2
      "\n"                            // 3
      "[listener.echo]\n"             // 4
      "  plugin=echo\n"               // 5
      "listen = tcp:7007:x=y\n");     // 6
  ASSERT_EQ(ini.sections.size(), 2u);
  EXPECT_EQ(ini.path, "host.ini");
  EXPECT_EQ(ini.sections[0].name, "host");
  EXPECT_EQ(ini.sections[0].line, 1);
  EXPECT_EQ(ini.sections[0].entries.at("plugins_dir").value, "/opt/plugins");
  EXPECT_EQ(ini.sections[0].entries.at("plugins_dir").line, 2);
  const auto* echo = ini.find("listener.echo");
  ASSERT_NE(echo, nullptr);
  EXPECT_EQ(echo->line, 4);
  EXPECT_EQ(echo->entries.at("plugin").value, "echo");
  EXPECT_EQ(echo->entries.at("plugin").line, 5);
  EXPECT_EQ(echo->entries.at("listen").value, "tcp:7007:x=y");  // split at the first '='
  EXPECT_EQ(ini.find("nope"), nullptr);
}

TEST(IniFile, HashAndSemicolonCommentsAndBlankLines) {
  IniFile ini = parseClean(
      "# comment\n"
      "; another\n"
      "   # indented comment\n"
      "\t\n"
      "[s]\n"
      "a = 1 ; not a comment\n"
      "; a = 2\n"
      "# a = 3\n");
  ASSERT_EQ(ini.sections.size(), 1u);
  EXPECT_EQ(ini.sections[0].line, 5);
  ASSERT_EQ(ini.sections[0].entries.size(), 1u);
  EXPECT_EQ(ini.sections[0].entries.at("a").value, "1 ; not a comment");
}

TEST(IniFile, CrlfLineEndingsAndNoFinalNewline) {
  IniFile ini = parseClean("[s]\r\na = 1\r\n\r\nb = 2");
  ASSERT_EQ(ini.sections.size(), 1u);
  EXPECT_EQ(ini.sections[0].entries.at("a").value, "1");
  EXPECT_EQ(ini.sections[0].entries.at("b").value, "2");
  EXPECT_EQ(ini.sections[0].entries.at("b").line, 4);
}

TEST(IniFile, EmptyValueIsAllowed) {
  IniFile ini = parseClean("[s]\na =\n");
  EXPECT_EQ(ini.sections[0].entries.at("a").value, "");
}

TEST(IniFile, DuplicateKey) {
  Errors errors;
  IniFile ini = parse("[s]\na = 1\n\na = 2\n", errors);
  EXPECT_EQ(errors, Errors{"host.ini:4: a: duplicate key in [s] (first set at line 2)"});
  EXPECT_EQ(ini.sections[0].entries.at("a").value, "1");
}

TEST(IniFile, DuplicateSectionIsRejectedAndItsKeysIgnored) {
  Errors errors;
  IniFile ini = parse("[s]\na = 1\n[t]\n[s]\nb = 2\n[u]\nc = 3\n", errors);
  EXPECT_EQ(errors, Errors{"host.ini:4: [s]: duplicate section (first defined at line 1)"});
  ASSERT_EQ(ini.sections.size(), 3u);
  EXPECT_EQ(ini.find("s")->entries.count("b"), 0u);
  EXPECT_EQ(ini.find("u")->entries.at("c").value, "3");
}

TEST(IniFile, KeyOutsideAnySection) {
  Errors errors;
  parse("# top\na = 1\n[s]\n", errors);
  EXPECT_EQ(errors, Errors{"host.ini:2: a: key outside of any [section]"});
}

TEST(IniFile, UnterminatedSectionHeader) {
  Errors errors;
  IniFile ini = parse("[host\na = 1\n", errors);
  EXPECT_EQ(errors, Errors{"host.ini:1: [host: section header must end with ']'"});
  EXPECT_TRUE(ini.sections.empty());
}

TEST(IniFile, InvalidSectionName) {
  Errors errors;
  parse("[a b]\n", errors);
  EXPECT_EQ(errors, Errors{"host.ini:1: [a b]: invalid section name (letters, digits, '_', '-', '.')"});
}

TEST(IniFile, LineWithoutEquals) {
  Errors errors;
  parse("[s]\njust words\n", errors);
  EXPECT_EQ(errors, Errors{"host.ini:2: just words: expected \"key = value\""});
}

TEST(IniFile, InvalidKeyNames) {
  Errors errors;
  parse("[s]\nmy key = 1\n= 2\n", errors);
  EXPECT_EQ(errors, (Errors{"host.ini:2: my key: invalid key name (letters, digits, '_', '-', '.')",
                            "host.ini:3: -: invalid key name (letters, digits, '_', '-', '.')"}));
}

TEST(IniFile, NulByte) {
  Errors errors;
  const char text[] = "[s]\na = x\0y\n";
  parse(std::string(text, sizeof text - 1), errors);
  EXPECT_EQ(errors, Errors{"host.ini:2: -: NUL byte in line"});
}

TEST(IniFile, EveryProblemIsReportedInLineOrder) {
  Errors errors;
  parse("x = 1\n[s]\na = 1\na = 2\n[s]\nnonsense\n", errors);
  EXPECT_EQ(errors, (Errors{"host.ini:1: x: key outside of any [section]",
                            "host.ini:4: a: duplicate key in [s] (first set at line 3)",
                            "host.ini:5: [s]: duplicate section (first defined at line 2)",
                            "host.ini:6: nonsense: expected \"key = value\""}));
}

TEST(IniFile, EmptyText) {
  IniFile ini = parseClean("");
  EXPECT_TRUE(ini.sections.empty());
}
