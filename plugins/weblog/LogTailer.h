#pragma once
// Follows one file by name, like `tail -F`, and hands out its new complete lines.
// No threads, no timers: the owner calls poll() (the weblog factory does so from
// a repeating reactor timer; tests call it directly).
//
// What it follows (checked on every poll, after the open file was read to EOF):
// - appends: read from the last offset; a partial last line is kept until its '\n';
// - rotation by rename, or delete + recreate: the path's device/inode differ from
//   the open file's. The old file is read to its end first (a writer may still
//   have appended to it after the rename), then the new file is read from its start;
// - path missing (renamed away or deleted, not recreated yet): keep reading the open
//   file, retry the name on every poll;
// - copytruncate: the open file became shorter than the offset: seek to 0.
//   (A truncation followed by rewriting past the old offset between two polls
//   cannot be told from an append; this is inherent to size-based detection.)
// - missing at start: retry the name on every poll; a file that appears is read
//   from its start (all of it was written after the tailer started).
// Lines longer than maxLineBytes are skipped (counted) and following continues.
// Each complete line is returned exactly once, in file order.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace protohost::plugins::weblog {

struct TailerOptions {
  /// Longest line kept (without its '\n'); longer ones are skipped and counted.
  std::size_t maxLineBytes = 64 * 1024;
  /// At most this many bytes are read per poll() so that a large backlog does
  /// not block the caller's thread; the rest comes with the next polls.
  std::size_t maxBytesPerPoll = 4 * 1024 * 1024;
};

class LogTailer {
 public:
  using Options = TailerOptions;
  enum class StartAt { End, Beginning };
  struct Stats {
    std::uint64_t linesRead = 0;         ///< complete lines returned
    std::uint64_t longLinesSkipped = 0;  ///< lines over maxLineBytes
    std::uint64_t partialLinesDropped = 0;  ///< unterminated tails of rotated/truncated files
    std::uint64_t rotations = 0;         ///< switched to a new file at the path
    std::uint64_t truncations = 0;       ///< copytruncate detected
    std::uint64_t readErrors = 0;
  };
  /// Receives one human-readable line per notable event (opened, rotated,
  /// truncated, missing, errors). Called from poll()/start() only.
  using NoticeFn = std::function<void(std::string_view)>;

  explicit LogTailer(std::string path, Options options = {}, NoticeFn notice = {});
  ~LogTailer();
  LogTailer(const LogTailer&) = delete;
  LogTailer& operator=(const LogTailer&) = delete;

  /// Opens the file and positions at its end (the article's seek(0, 2)) or its
  /// beginning. With StartAt::End, an unterminated last line (being written
  /// right now) is skipped up to its '\n': it began before the tailer did.
  /// A missing file is not an error: poll() waits for it.
  void start(StartAt at = StartAt::End);

  /// Reads what is new and returns the complete lines (without '\n'; a '\r'
  /// before it is kept), in order. Never blocks on anything but local file reads.
  std::vector<std::string> poll();

  /// Closes the file. poll() after close() reopens the path from its beginning.
  void close();

  /// Whether the last poll() stopped at maxBytesPerPoll (more may be waiting).
  bool budgetSpent() const { return budgetSpent_; }
  bool isOpen() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }
  const Stats& stats() const { return stats_; }
  /// Bytes of an unterminated line held back (for tests).
  std::size_t bufferedBytes() const { return partial_.size(); }

 private:
  enum class Discard { None, StartupFragment, LongLine };

  bool openPath(bool atEnd);
  /// Reads the open file until EOF or until the poll budget is spent (returns false then).
  bool drain(std::vector<std::string>& out, std::size_t& budget);
  void split(std::string_view chunk, std::vector<std::string>& out);
  void dropPartial();
  void notice(const std::string& text);
  /// Like notice, but a problem repeated on every poll is reported once.
  void problem(const std::string& text);

  std::string path_;
  Options options_;
  NoticeFn notice_;
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  off_t offset_ = 0;
  std::string partial_;
  Discard discard_ = Discard::None;
  bool reportedMissing_ = false;
  std::string lastProblem_;
  Stats stats_;
  std::vector<char> readBuffer_;
  bool budgetSpent_ = false;
};

}  // namespace protohost::plugins::weblog
