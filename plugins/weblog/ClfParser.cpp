#include "ClfParser.h"

#include <cstddef>

namespace protohost::plugins::weblog {

namespace {

// A cursor over the line; every step either consumes a field or fails.
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  bool atEnd() const { return pos_ >= s_.size(); }

  // One or more spaces; false when there is none.
  bool spaces() {
    std::size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
    return pos_ > start;
  }

  // A non-empty run of bytes up to the next space or the end.
  std::optional<std::string_view> token() {
    std::size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != ' ') ++pos_;
    if (pos_ == start) return std::nullopt;
    return s_.substr(start, pos_ - start);
  }

  // "[...]" -> the bytes between the brackets.
  std::optional<std::string_view> bracketed() {
    if (pos_ >= s_.size() || s_[pos_] != '[') return std::nullopt;
    std::size_t close = s_.find(']', pos_ + 1);
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view v = s_.substr(pos_ + 1, close - pos_ - 1);
    pos_ = close + 1;
    return v;
  }

  // "\"...\"" with \x escapes skipped over -> the bytes between the quotes, as written.
  std::optional<std::string_view> quoted() {
    if (pos_ >= s_.size() || s_[pos_] != '"') return std::nullopt;
    std::size_t i = pos_ + 1;
    while (i < s_.size()) {
      if (s_[i] == '\\') {
        i += 2;
        continue;
      }
      if (s_[i] == '"') {
        std::string_view v = s_.substr(pos_ + 1, i - pos_ - 1);
        pos_ = i + 1;
        return v;
      }
      ++i;
    }
    return std::nullopt;
  }

  // The next field ends here: at the end or before a space.
  bool fieldEnds() const { return pos_ >= s_.size() || s_[pos_] == ' '; }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

bool allDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

std::optional<LogFields> parseLogLine(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  while (!line.empty() && line.back() == ' ') line.remove_suffix(1);

  Scanner sc(line);
  LogFields f;
  auto host = sc.token();
  if (!host || !sc.spaces()) return std::nullopt;
  if (!sc.token() || !sc.spaces()) return std::nullopt;  // ident
  if (!sc.token() || !sc.spaces()) return std::nullopt;  // authuser
  auto ts = sc.bracketed();
  if (!ts || !sc.spaces()) return std::nullopt;
  auto request = sc.quoted();
  if (!request || !sc.spaces()) return std::nullopt;
  auto status = sc.token();
  if (!status || status->size() != 3 || !allDigits(*status) || !sc.spaces()) return std::nullopt;
  auto bytes = sc.token();
  if (!bytes || (*bytes != "-" && !allDigits(*bytes))) return std::nullopt;

  f.ip = *host;
  f.timestamp = *ts;
  f.request = *request;
  f.status = *status;
  f.bytes = *bytes;
  f.referrer = "-";
  f.agent = "-";
  if (sc.atEnd()) return f;  // Common Log Format

  if (!sc.spaces()) return std::nullopt;
  auto referrer = sc.quoted();
  if (!referrer || !sc.spaces()) return std::nullopt;
  auto agent = sc.quoted();
  if (!agent || !sc.fieldEnds()) return std::nullopt;
  f.referrer = *referrer;
  f.agent = *agent;
  return f;  // Combined; anything after the agent is ignored
}

}  // namespace protohost::plugins::weblog
