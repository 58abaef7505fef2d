#include "base/Log.h"

#include <chrono>
#include <ctime>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace protohost::host {

static const char* levelName(LogLevel level) {
  switch (level) {
    case LogLevel::Debug: return "DEBUG";
    case LogLevel::Info: return "INFO";
    case LogLevel::Warning: return "WARN";
    case LogLevel::Error: return "ERROR";
  }
  return "?";
}

bool parseLogLevel(std::string_view text, LogLevel& out) {
  if (text == "debug") out = LogLevel::Debug;
  else if (text == "info") out = LogLevel::Info;
  else if (text == "warning" || text == "warn") out = LogLevel::Warning;
  else if (text == "error") out = LogLevel::Error;
  else return false;
  return true;
}

static std::string formatLine(LogLevel level, std::string_view context, std::string_view message) {
  using namespace std::chrono;
  auto now = system_clock::now();
  std::time_t secs = system_clock::to_time_t(now);
  int millis = static_cast<int>(duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  std::string line;
  line.reserve(64 + context.size() + message.size());
  line.append(stamp).append(" ").append(levelName(level)).append(" ");
  if (!context.empty()) line.append("[").append(context).append("] ");
  // One event, one line: a message never breaks the line structure.
  for (char c : message) line.push_back(c == '\n' || c == '\r' ? ' ' : c);
  line.push_back('\n');
  return line;
}

Log& Log::instance() {
  // Never destroyed: the writer thread may still be blocked on the output
  // while the process exits.
  static Log* log = new Log;
  return *log;
}

Log::Log()
    : output_(kQueueBytes, [](std::uint64_t dropped) {
        return formatLine(LogLevel::Warning, "",
                          std::to_string(dropped) + " log lines dropped: output blocked (protohost_log_lines_dropped_total)");
      }) {}

void Log::write(LogLevel level, std::string_view context, std::string_view message) {
  if (!enabled(level)) return;
  output_.write(formatLine(level, context, message));
}

static int openLogFile(const std::string& path, std::string& error) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) error = path + ": " + std::strerror(errno);
  return fd;
}

bool Log::openFile(const std::string& path, std::string& error) {
  int fd = 2;  // an empty path: back to stderr
  if (!path.empty() && (fd = openLogFile(path, error)) < 0) return false;
  std::lock_guard<std::mutex> lock(mutex_);
  output_.setFd(fd);
  path_ = path;
  return true;
}

bool Log::reopen(std::string& error) {
  std::string path;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    path = path_;
  }
  if (path.empty()) return true;  // logging to stderr: nothing to reopen
  return openFile(path, error);
}

}  // namespace protohost::host
