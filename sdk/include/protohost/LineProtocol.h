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
      hold(data, frame(data));
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

 private:
  // Frames @p data line by line. Returns how many bytes at its end were left
  // unframed because reading is paused (0 when all were framed or it closed).
  std::size_t frame(std::string_view data) {
    while (!data.empty() && !transport().isClosing()) {
      if (transport().readingPaused()) return data.size();
      std::size_t pos = findDelimiter(data);
      if (pos == std::string_view::npos) {
        // Room for a partial delimiter, and for the CR of a CRLF ending that is stripped.
        std::size_t allowance = delimiter_.size() - 1 + (crStripped() && data.back() == '\r' ? 1 : 0);
        if (buffer_.size() + data.size() > maxLineLength_ + allowance) {
          overflow(buffer_.size() + data.size());
          return 0;
        }
        buffer_.append(data);
        return 0;
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
        return 0;
      }
      data.remove_prefix(consumed);
      deliver(line);
      buffer_.clear();
    }
    return 0;
  }

  // Keeps the last @p unframed bytes of @p data, which a pause stopped, until reading resumes.
  void hold(std::string_view data, std::size_t unframed) {
    if (unframed == 0) return;
    held_.assign(data.substr(data.size() - unframed));
    heldPos_ = 0;
  }

  // Frames what a pause held back, as far as the next pause.
  void frameHeld() {
    const std::size_t unframed = frame(std::string_view(held_).substr(heldPos_));
    if (unframed == 0 || overflowed_ || transport().isClosing()) {
      held_.clear();
      heldPos_ = 0;
    } else {
      heldPos_ = held_.size() - unframed;
      // Drop the delivered prefix once it is most of the string (amortised
      // O(1) per byte; otherwise input appended behind held lines kept it all).
      if (heldPos_ > held_.size() / 2) {
        held_.erase(0, heldPos_);
        heldPos_ = 0;
      }
    }
  }

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
    if (buffer_.empty() || !held_.empty()) {
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
  bool eofHeld_ = false;     // readEnded came while lines were held
  std::chrono::milliseconds lineTimeout_{0};
  TimerId lineTimer_ = 0;
  std::uint64_t completedLines_ = 0;
  std::uint64_t lineStartGeneration_ = 0;
};

}  // namespace protohost
