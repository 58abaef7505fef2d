#pragma once
/// @file SanitizerReport.h
/// Finds a sanitizer report in a child process's stderr (ChildProcess.h fails
/// the test with it). Under scripts/run-tests.sh --tsan or --sanitize, a race
/// or memory error in the host ends it (halt_on_error) with a report on
/// stderr; a test that never checks the exit status, or that ends the host
/// itself, would otherwise pass.
///
/// Header-only, standard library only.

#include <cstddef>
#include <regex>
#include <string>
#include <vector>

namespace protohost::testsupport {

/// At most this many lines of a report are kept (a TSan report with two
/// stacks and the mutexes involved fits).
inline constexpr std::size_t kSanitizerReportMaxLines = 80;

/// True when @p line starts a report of ThreadSanitizer, AddressSanitizer,
/// LeakSanitizer, MemorySanitizer or UndefinedBehaviorSanitizer
/// ("FILE:LINE:COL: runtime error: ...").
inline bool isSanitizerReportLine(const std::string& line) {
  static const std::regex re(
      "(WARNING|ERROR|FATAL): (Thread|Address|Leak|Memory|UndefinedBehavior)Sanitizer"
      "|:[0-9]+:[0-9]+: runtime error: ");
  return std::regex_search(line, re);
}

/// The lines from the first report line on (at most kSanitizerReportMaxLines),
/// joined with '\n'; empty when @p lines hold no report.
inline std::string findSanitizerReport(const std::vector<std::string>& lines) {
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (!isSanitizerReportLine(lines[i])) continue;
    std::string report;
    for (std::size_t j = i; j < lines.size() && j < i + kSanitizerReportMaxLines; ++j) report += lines[j] + "\n";
    return report;
  }
  return {};
}

}  // namespace protohost::testsupport
