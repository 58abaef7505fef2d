#pragma once
// Access-log line -> fields. Common Log Format
//   %h %l %u %t "%r" %>s %b
// and Combined Log Format (the same plus "%{Referer}i" "%{User-agent}i").
// Pure function, no I/O, no escaping: the fields are raw byte ranges of the line.

#include <optional>
#include <string_view>

namespace protohost::plugins::weblog {

/// The fields a <hit/> element carries; views into the parsed line.
/// ident (%l) and authuser (%u) are dropped, brackets and quotes removed.
/// A Common Log Format line has referrer and agent "-".
struct LogFields {
  std::string_view ip;
  std::string_view timestamp;
  std::string_view request;
  std::string_view status;
  std::string_view bytes;
  std::string_view referrer;
  std::string_view agent;
};

/// Parses one line (without its '\n'; a trailing '\r' is ignored). Returns
/// nullopt when the line is not Common or Combined Log Format.
///
/// Accepted shape, fields separated by one or more spaces:
///   HOST IDENT USER [TIMESTAMP] "REQUEST" STATUS BYTES ["REFERRER" "AGENT" [anything]]
/// - HOST, IDENT, USER: non-empty, no spaces; TIMESTAMP: anything but ']'.
/// - Quoted fields may contain \" and \\ (Apache's escaping); they are kept
///   as written, not unescaped.
/// - STATUS: three digits; BYTES: digits or "-".
/// - After AGENT, further fields (e.g. nginx's "$http_x_forwarded_for") are ignored.
std::optional<LogFields> parseLogLine(std::string_view line);

}  // namespace protohost::plugins::weblog
