#pragma once
// Poll mode's request framing: the article's client sends "NEW?" with no line
// ending; others may add "\n" or "\r\n". Byte-at-a-time state machine, so a
// request split across reads ("NE" + "W?") and several requests in one read
// ("NEW?NEW?\n") are both counted exactly.
//
// Grammar: (WS* "NEW?")* WS*, where WS is space, \t, \r or \n. Anything else is
// garbage: the caller answers the requests before it and closes the connection.

#include <cstddef>
#include <string_view>

namespace protohost::plugins::weblog {

class PollRequestFramer {
 public:
  static constexpr std::string_view kRequest = "NEW?";

  struct Result {
    std::size_t requests = 0;  ///< complete requests in this chunk (before any garbage)
    bool garbage = false;      ///< a byte outside the grammar was seen; framing stops
  };

  /// Consumes @p data. Once garbage was seen, every later call reports garbage too.
  Result feed(std::string_view data);

  /// Bytes of a request received so far (0-3).
  std::size_t partial() const { return matched_; }

 private:
  std::size_t matched_ = 0;
  bool broken_ = false;
};

}  // namespace protohost::plugins::weblog
