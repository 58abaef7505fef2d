#pragma once
/// @file LineProtocol.h
/// Line framing for line-based protocols (Twisted's LineReceiver).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <string>
#include <string_view>

#include "protohost/Logger.h"
#include "protohost/Protocol.h"
#include "protohost/Reactor.h"

namespace protohost {

/// Splits the byte stream at a delimiter and calls lineReceived once per line,
/// without the delimiter. A line longer than maxLineLength() bytes calls
/// lineLengthExceeded, which by default closes the connection. With the default
/// delimiter "\n", a trailing "\r" is stripped too (and not counted against
/// the limit), so CRLF clients work.
/// With setLineTimeout(t), a line must be complete within t of its first byte
/// (against slowloris clients that trickle bytes to stay under an idle timeout).
/// Like Twisted's LineReceiver it honours a pause between two lines of one
/// chunk: once Transport::readingPaused() (the protocol paused reading, or its
/// output backed up past pause_reading_above) it delivers no further line and
/// keeps the rest; the held lines follow, in order, once reading resumes
/// (Transport::whenReadingResumed, which LineProtocol therefore uses itself).
/// An EOF (readEnded) that comes while lines are held waits for them. Held
/// input is bounded by the transport: the host (and MemoryTransport) hands
/// over no input while a whenReadingResumed request waits, so at most one read
/// (64 KiB in the host) is held; input handed over anyway is appended unbounded.
class LineProtocol : public Protocol {
 public:
  explicit LineProtocol(std::string delimiter = "\n", std::size_t maxLineLength = 16384)
      : delimiter_(std::move(delimiter)), maxLineLength_(maxLineLength) {
    if (delimiter_.empty()) delimiter_ = "\n";
  }

  /// One complete line, delimiter removed. Valid only during the call.
  virtual void lineReceived(std::string_view line) = 0;

  /// A line grew past maxLineLength() without a delimiter. Default: log and
  /// close after flushing what was written. Framing stops after this call.
  virtual void lineLengthExceeded(std::size_t length) {
    transport().logger().warning("line longer than " + std::to_string(maxLineLength_) +
                                 " bytes (" + std::to_string(length) + " buffered); closing");
    transport().loseConnection();
  }

  void dataReceived(std::string_view data) final {
    if (overflowed_) return;
    if (held_.empty()) {
      consume(data);
    } else {
      held_.append(data);  // behind the lines that wait for a resume: order kept
      if (!transport().readingPaused()) frameHeld();
    }
    afterFraming();
  }

  /// The peer shut down its sending side. Lines a pause holds are delivered
  /// first: the EOF waits for them, then readEnded() is called again (it is
  /// virtual) with nothing held. Default: close after flushing what was
  /// written. An override that wants that order starts with
  /// `if (deferReadEnded()) return;`.
  void readEnded() override {
    if (deferReadEnded()) return;
    transport().loseConnection();
  }

  /// Bytes received and not yet delivered: a partial line, plus what a pause holds back.
  std::size_t bufferedBytes() const { return buffer_.size() + held_.size() - heldPos_; }

  // ---- raw mode and sendLine (Twisted's LineReceiver; since SDK 1.3, header-only) ----

  /// In raw mode, bytes arrive here instead of as lines: the rest of the chunk
  /// after the line whose lineReceived called setRawMode, then every later
  /// chunk, whole, with no length limit. Like lines, none arrives while
  /// reading is paused (held, then delivered after the resume). Default: ignore.
  virtual void rawDataReceived(std::string_view data) { (void)data; }

  /// Switches to raw mode (e.g. from lineReceived, before a length-counted
  /// body). A partial line buffered at the switch goes to rawDataReceived
  /// first, with the next bytes.
  void setRawMode() { raw_ = true; }

  /// Switches back to lines. @p extra, bytes rawDataReceived got but that
  /// belong to the lines (what follows the body's end), is framed before any
  /// later input: right after the hook returns when called from
  /// rawDataReceived, else at once (subject to a pause, like input).
  void setLineMode(std::string_view extra = {}) {
    raw_ = false;
    if (extra.empty() || overflowed_) return;
    if (consuming_) {
      extra_.append(extra);
      return;
    }
    std::string copy(extra);  // @p extra may view held_
    held_.insert(heldPos_, copy);
    if (!transport().readingPaused()) frameHeld();
    afterFraming();
  }

  bool isRawMode() const { return raw_; }

  /// Writes @p line and the delimiter as one write (Transport::writeSequence).
  void sendLine(std::string_view line) {
    const std::string_view pieces[] = {line, delimiter_};
    transport().writeSequence(pieces);
  }

 protected:
  /// For tests: the bytes of held-input storage, already delivered prefix
  /// included (bufferedBytes counts only what is undelivered).
  std::size_t heldStorageBytes() const { return held_.size(); }

 private:
  // Frames @p data, line by line (or as raw pieces in raw mode), until it is
  // used up, the connection closes or reading pauses; what a pause leaves is
  // held until reading resumes, the rest of held_ is dropped.
  void consume(std::string_view data) {
    std::string owned;  // input rebuilt from setLineMode's extra or a partial line at a raw switch
    consuming_ = true;
    while (!data.empty() && !transport().isClosing() && !overflowed_) {
      if (transport().readingPaused()) {
        consuming_ = false;
        keepHeld(data);
        return;
      }
      if (raw_) {
        if (!buffer_.empty()) {  // a partial line from before the switch comes first
          std::string next = std::exchange(buffer_, {});
          next.append(data);
          owned = std::move(next);
          data = owned;
          boundaryCarry_ = 0;
        }
        rawDataReceived(data);
        data = {};
        takeExtra(data, owned);
        continue;
      }
      std::size_t pos = findDelimiter(data);
      if (pos == std::string_view::npos) {
        // Room for a partial delimiter, and for the CR of a CRLF ending that is stripped.
        std::size_t allowance = delimiter_.size() - 1 + (crStripped() && data.back() == '\r' ? 1 : 0);
        if (buffer_.size() + data.size() > maxLineLength_ + allowance) {
          overflow(buffer_.size() + data.size());
          break;
        }
        buffer_.append(data);
        break;
      }
      // pos is relative to data; the delimiter may start inside buffer_.
      std::size_t lineEnd = pos;  // end of line inside (buffer_ + data), measured in data
      std::size_t consumed = pos + delimiter_.size() - boundaryCarry_;
      std::string_view line;
      if (buffer_.empty()) {
        line = data.substr(0, lineEnd);
      } else {
        buffer_.append(data.substr(0, consumed));
        buffer_.resize(buffer_.size() - delimiter_.size());
        line = buffer_;
      }
      boundaryCarry_ = 0;
      if (line.size() > maxLineLength_ + (crStripped() && !line.empty() && line.back() == '\r' ? 1 : 0)) {
        overflow(line.size());
        break;
      }
      data.remove_prefix(consumed);
      deliver(line);
      buffer_.clear();
      takeExtra(data, owned);
    }
    consuming_ = false;
    held_.clear();
    heldPos_ = 0;
  }

  // setLineMode(extra) from a hook: @p extra goes in front of the unframed rest.
  void takeExtra(std::string_view& data, std::string& owned) {
    if (extra_.empty()) return;
    std::string next = std::exchange(extra_, {});
    next.append(data);  // data may view owned: appended before owned is replaced
    owned = std::move(next);
    data = owned;
  }

  // Keeps @p rest, which a pause stopped, until reading resumes.
  void keepHeld(std::string_view rest) {
    if (!held_.empty() && rest.data() >= held_.data() && rest.data() <= held_.data() + held_.size()) {
      heldPos_ = static_cast<std::size_t>(rest.data() - held_.data());
      // Drop the delivered prefix once it is most of the string (amortised
      // O(1) per byte; otherwise input appended behind held lines kept it all).
      if (heldPos_ > held_.size() / 2) {
        held_.erase(0, heldPos_);
        heldPos_ = 0;
      }
    } else {
      held_.assign(rest);
      heldPos_ = 0;
    }
  }

  // Frames what a pause held back, as far as the next pause.
  void frameHeld() { consume(std::string_view(held_).substr(heldPos_)); }

  // After each call that framed: the line deadline, and a resume for held lines.
  void afterFraming() {
    if (transport().isClosing()) return;
    if (lineTimeout_.count() > 0) updateLineTimer();
    if (!held_.empty())
      transport().whenReadingResumed([this] {
        if (overflowed_ || held_.empty()) return;
        frameHeld();
        afterFraming();
      });
    else if (eofHeld_ && !transport().isClosing()) {
      eofHeld_ = false;
      readEnded();  // the EOF came behind the lines just delivered
    }
  }

 protected:
  /// True while lines are held back by a pause: the EOF is then remembered and
  /// readEnded() called again once they are delivered (see readEnded).
  bool deferReadEnded() {
    if (held_.empty() || overflowed_ || transport().isClosing()) return false;
    eofHeld_ = true;
    return true;
  }

 public:
  /// A started line not completed within @p timeout calls lineTimedOut. 0 = off.
  void setLineTimeout(std::chrono::milliseconds timeout) { lineTimeout_ = timeout; }

  /// A line was not completed in time. Default: log and close.
  virtual void lineTimedOut() {
    transport().logger().warning("line not completed within " + std::to_string(lineTimeout_.count()) + " ms; closing");
    transport().loseConnection();
  }

  std::size_t maxLineLength() const { return maxLineLength_; }
  void setMaxLineLength(std::size_t n) { maxLineLength_ = n; }
  const std::string& delimiter() const { return delimiter_; }

 private:
  // Arms the deadline when a partial line starts, drops it when none is pending
  // (or while lines are held: the peer is not late, the protocol is not reading).
  void updateLineTimer() {
    if (buffer_.empty() || !held_.empty() || raw_) {
      if (lineTimer_) transport().reactor().cancel(std::exchange(lineTimer_, 0));
      return;
    }
    if (lineTimer_ && lineStartGeneration_ == completedLines_) return;  // same partial line
    if (lineTimer_) transport().reactor().cancel(lineTimer_);
    lineStartGeneration_ = completedLines_;
    lineTimer_ = transport().reactor().callLater(lineTimeout_, [this] {
      lineTimer_ = 0;
      lineTimedOut();
    });
  }

  // Finds the delimiter's end-aligned start in the virtual stream buffer_+data,
  // returning its offset in data (may be "negative" via boundaryCarry_ when the
  // delimiter began in buffer_: the return value is then 0 and boundaryCarry_
  // holds how many delimiter bytes were already buffered).
  std::size_t findDelimiter(std::string_view data) {
    boundaryCarry_ = 0;
    // Delimiter straddling the buffer/data boundary (multi-byte delimiters only).
    for (std::size_t k = delimiter_.size() - 1; k > 0; --k) {
      if (buffer_.size() >= k && data.size() >= delimiter_.size() - k &&
          std::string_view(buffer_).substr(buffer_.size() - k) ==
              std::string_view(delimiter_).substr(0, k) &&
          data.substr(0, delimiter_.size() - k) == std::string_view(delimiter_).substr(k)) {
        boundaryCarry_ = k;
        return 0;
      }
    }
    return data.find(delimiter_);
  }

  // With the "\n" delimiter a trailing CR is stripped and does not count towards the limit.
  bool crStripped() const { return delimiter_ == "\n"; }

  void deliver(std::string_view line) {
    ++completedLines_;
    if (crStripped() && !line.empty() && line.back() == '\r') line.remove_suffix(1);
    lineReceived(line);
  }

  void overflow(std::size_t length) {
    overflowed_ = true;
    buffer_.clear();
    buffer_.shrink_to_fit();
    lineLengthExceeded(length);
  }

  std::string delimiter_;
  std::size_t maxLineLength_;
  std::string buffer_;
  std::string held_;         // input after the line a pause stopped at (from heldPos_ on)
  std::size_t heldPos_ = 0;
  std::size_t boundaryCarry_ = 0;
  bool overflowed_ = false;
  bool raw_ = false;         // setRawMode: input goes to rawDataReceived
  bool consuming_ = false;   // inside consume(): setLineMode's extra waits in extra_
  std::string extra_;
  bool eofHeld_ = false;     // readEnded came while lines were held
  std::chrono::milliseconds lineTimeout_{0};
  TimerId lineTimer_ = 0;
  std::uint64_t completedLines_ = 0;
  std::uint64_t lineStartGeneration_ = 0;
};

}  // namespace protohost
