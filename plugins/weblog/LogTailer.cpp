#include "LogTailer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace protohost::plugins::weblog {

namespace {
constexpr std::size_t kReadChunk = 64 * 1024;

std::string errnoText(int err) { return std::strerror(err); }
}  // namespace

LogTailer::LogTailer(std::string path, Options options, NoticeFn notice)
    : path_(std::move(path)), options_(options), notice_(std::move(notice)) {
  options_.maxBytesPerPoll = std::max<std::size_t>(options_.maxBytesPerPoll, 1);
}

LogTailer::~LogTailer() { close(); }

void LogTailer::start(StartAt at) {
  close();
  if (openPath(at == StartAt::End)) {
    notice("following " + path_ + (at == StartAt::End ? " from its end" : " from its start"));
  } else if (!reportedMissing_) {
    reportedMissing_ = true;
    notice("waiting for " + path_ + " to appear");
  }
}

void LogTailer::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  partial_.clear();
  discard_ = Discard::None;
}

bool LogTailer::openPath(bool atEnd) {
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int err = errno;
    if (err != ENOENT && err != ENOTDIR) problem("cannot open " + path_ + ": " + errnoText(err));
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    problem(path_ + " is not a regular file");
    return false;
  }
  fd_ = fd;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  partial_.clear();
  discard_ = Discard::None;
  offset_ = 0;
  if (atEnd && st.st_size > 0) {
    offset_ = st.st_size;
    char last = '\n';
    if (::pread(fd_, &last, 1, offset_ - 1) == 1 && last != '\n') discard_ = Discard::StartupFragment;
    if (::lseek(fd_, offset_, SEEK_SET) < 0) offset_ = 0;
  }
  reportedMissing_ = false;
  lastProblem_.clear();
  return true;
}

std::vector<std::string> LogTailer::poll() {
  std::vector<std::string> out;
  std::size_t budget = options_.maxBytesPerPoll;
  budgetSpent_ = false;
  // 1. What was appended to the open file.
  if (fd_ >= 0 && !drain(out, budget)) return out;

  // 2. At EOF: is the path still this file?
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      if (!reportedMissing_) {
        reportedMissing_ = true;
        notice(fd_ >= 0 ? path_ + " is gone; finishing the open file and waiting for a new one"
                        : "waiting for " + path_ + " to appear");
      }
    } else {
      problem("cannot stat " + path_ + ": " + errnoText(err));
    }
    return out;
  }

  if (fd_ < 0) {  // missing at start, or reopening failed earlier
    if (openPath(false)) {
      notice("following " + path_ + " from its start");
      drain(out, budget);
    }
    return out;
  }

  if (st.st_dev != dev_ || st.st_ino != ino_) {
    // Rotated by rename, or deleted and recreated. A writer may have appended to
    // the old file between our read and the stat: finish it before switching.
    if (!drain(out, budget)) return out;  // budget spent: finish next poll, then switch
    dropPartial();
    ::close(fd_);
    fd_ = -1;
    ++stats_.rotations;
    if (openPath(false)) {
      notice(path_ + " was replaced (rotated or recreated); following the new file from its start");
      drain(out, budget);
    }
    return out;
  }

  struct stat fst {};
  if (::fstat(fd_, &fst) == 0 && fst.st_size < offset_) {
    ++stats_.truncations;
    notice(path_ + " was truncated; reading it again from its start");
    dropPartial();
    offset_ = 0;
    if (::lseek(fd_, 0, SEEK_SET) == 0) drain(out, budget);
  }
  return out;
}

bool LogTailer::drain(std::vector<std::string>& out, std::size_t& budget) {
  if (readBuffer_.empty()) readBuffer_.resize(kReadChunk);
  for (;;) {
    if (budget == 0) {
      budgetSpent_ = true;
      return false;
    }
    const std::size_t want = std::min(readBuffer_.size(), budget);
    const ssize_t n = ::read(fd_, readBuffer_.data(), want);
    if (n > 0) {
      offset_ += n;
      budget -= static_cast<std::size_t>(n);
      split(std::string_view(readBuffer_.data(), static_cast<std::size_t>(n)), out);
      continue;
    }
    if (n == 0) return true;
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) return true;
    ++stats_.readErrors;
    problem("cannot read " + path_ + ": " + errnoText(err));
    return true;
  }
}

void LogTailer::split(std::string_view chunk, std::vector<std::string>& out) {
  while (!chunk.empty()) {
    const std::size_t nl = chunk.find('\n');
    if (nl == std::string_view::npos) {
      if (discard_ != Discard::None) return;  // still inside a skipped line
      if (partial_.size() + chunk.size() > options_.maxLineBytes) {
        ++stats_.longLinesSkipped;
        partial_.clear();
        discard_ = Discard::LongLine;
        return;
      }
      partial_.append(chunk);
      return;
    }
    const std::string_view piece = chunk.substr(0, nl);
    chunk.remove_prefix(nl + 1);
    if (discard_ != Discard::None) {  // the end of a skipped line
      discard_ = Discard::None;
      continue;
    }
    if (partial_.size() + piece.size() > options_.maxLineBytes) {
      ++stats_.longLinesSkipped;
      partial_.clear();
      continue;
    }
    ++stats_.linesRead;
    if (partial_.empty()) {
      out.emplace_back(piece);
    } else {
      partial_.append(piece);
      out.push_back(std::exchange(partial_, std::string()));
    }
  }
}

void LogTailer::dropPartial() {
  if (!partial_.empty()) ++stats_.partialLinesDropped;
  partial_.clear();
  discard_ = Discard::None;
}

void LogTailer::notice(const std::string& text) {
  if (notice_) notice_(text);
}

void LogTailer::problem(const std::string& text) {
  if (text == lastProblem_) return;
  lastProblem_ = text;
  notice(text);
}

}  // namespace protohost::plugins::weblog
