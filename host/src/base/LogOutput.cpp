#include "base/LogOutput.h"

#include <unistd.h>

#include <cerrno>
#include <utility>

namespace protohost::host {

LogOutput::LogOutput(std::size_t capacityBytes, ReportFormatter report)
    : capacity_(capacityBytes), report_(std::move(report)) {}

LogOutput::~LogOutput() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (fd_ > 2) ::close(fd_);
}

void LogOutput::writeAll(int fd, const std::string& line) {
  // One write(2) per line on an O_APPEND fd: lines never interleave.
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to report a failing log; drop the line
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void LogOutput::switchTo(int fd) {
  if (fd_ > 2 && fd_ != fd) ::close(fd_);
  fd_ = fd;
}

void LogOutput::write(std::string line) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!writer_.joinable()) {
    writeAll(fd_, line);
    return;
  }
  if (bytes_ + line.size() > capacity_) {
    ++dropped_;
    ++unreported_;
    // Reported where the first of them went missing, by one entry (outside
    // the bound) that counts every line dropped until the writer reaches it.
    if (!reportQueued_) {
      reportQueued_ = true;
      queue_.push_back(Entry{});
    }
  } else {
    bytes_ += line.size();
    queue_.push_back(Entry{std::move(line)});
  }
  lock.unlock();
  wake_.notify_one();
}

void LogOutput::setFd(int fd) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!writer_.joinable()) {
    switchTo(fd);
    return;
  }
  queue_.push_back(Entry{std::string(), fd});  // after the lines written before; never dropped
  wake_.notify_one();
}

void LogOutput::startWriter() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!writer_.joinable()) writer_ = std::thread([this] { run(); });
}

bool LogOutput::flush(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!writer_.joinable()) return true;
  return idle_.wait_for(lock, timeout, [this] { return queue_.empty() && !writing_; });
}

std::uint64_t LogOutput::droppedLines() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return dropped_;
}

void LogOutput::run() {
  // fd_ belongs to this thread from here on (setFd queues the switch).
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything is out
    std::deque<Entry> batch;
    batch.swap(queue_);
    writing_ = true;
    lock.unlock();
    std::size_t written = 0;
    for (const Entry& e : batch) {
      if (!e.line.empty()) {
        writeAll(fd_, e.line);  // may block: only this thread waits
        written += e.line.size();
      } else if (e.fd < 0) {
        // The output took what came before: it flows again. Count every drop up to now.
        lock.lock();
        const std::uint64_t n = unreported_;
        unreported_ = 0;
        reportQueued_ = false;
        lock.unlock();
        writeAll(fd_, report_(n));
      } else {
        switchTo(e.fd);
      }
    }
    lock.lock();
    bytes_ -= written;
    writing_ = false;
    if (queue_.empty()) idle_.notify_all();
  }
}

}  // namespace protohost::host
