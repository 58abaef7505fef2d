#include "PollRequestFramer.h"

namespace protohost::plugins::weblog {

PollRequestFramer::Result PollRequestFramer::feed(std::string_view data) {
  Result r;
  if (broken_) {
    r.garbage = true;
    return r;
  }
  for (char c : data) {
    if (matched_ == 0 && (c == ' ' || c == '\t' || c == '\r' || c == '\n')) continue;
    if (c != kRequest[matched_]) {
      broken_ = true;
      r.garbage = true;
      return r;
    }
    if (++matched_ == kRequest.size()) {
      matched_ = 0;
      ++r.requests;
    }
  }
  return r;
}

}  // namespace protohost::plugins::weblog
