#include "WeblogFactory.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include "HitFormatter.h"
#include "WeblogProtocol.h"

namespace protohost::plugins::weblog {

namespace {

/// At most one "skipped lines" warning per this interval; the counts accumulate in between.
constexpr std::chrono::seconds kSkipWarningInterval{10};
/// How much of an unparsable line the warning quotes.
constexpr std::size_t kExampleBytes = 120;

/// A printable, bounded excerpt of a raw log line for the host's log.
std::string excerpt(std::string_view line) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char ch : line.substr(0, kExampleBytes)) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += ch;
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  if (line.size() > kExampleBytes) out += "...";
  return out;
}

std::string modeName(Mode m) { return m == Mode::Push ? "push" : "poll"; }

}  // namespace

void WeblogFactory::configure(const ConfigView& config) {
  settings_ = readSettings(config);
  // Push clients are woken at half the backlog bound and pace the tailer at
  // three quarters of it: the last quarter is headroom for their unsent output.
  hub_ = std::make_unique<HitHub>(HitHub::Limits{settings_.history, settings_.maxClientBacklogBytes,
                                                 settings_.maxClientBacklogBytes / 4 * 3});
}

void WeblogFactory::start(FactoryContext& context) {
  if (!hub_) throw std::logic_error("weblog: start() before configure()");
  context_ = &context;
  alive_ = std::make_shared<Alive>(Alive{this});
  LogTailer::Options options;
  options.maxLineBytes = settings_.maxLineBytes;
  // One read formats to at most 6x its size (XML escaping): bounded by the cap.
  options.maxBytesPerPoll = std::max<std::size_t>(settings_.maxClientBacklogBytes / 8, 4096);
  tailer_ = std::make_unique<LogTailer>(settings_.accessLog, options, [this](std::string_view message) {
    if (context_) context_->logger().info(message);
  });
  tailer_->start(LogTailer::StartAt::End);
  timer_ = context.reactor().callEvery(settings_.pollInterval, [this] { pollLog(); });
  startInotify();
  context.logger().info("weblog: mode=" + modeName(settings_.mode) +
                        (settings_.mode == Mode::Push
                             ? " push_interval_ms=" + std::to_string(settings_.pushInterval.count())
                             : std::string()) +
                        " poll_interval_ms=" + std::to_string(settings_.pollInterval.count()) +
                        (inotifyWatch_ ? " inotify=on" : " inotify=off") +
                        " history=" + std::to_string(settings_.history) +
                        " max_client_backlog_bytes=" + std::to_string(settings_.maxClientBacklogBytes));
}

void WeblogFactory::stop() {
  stopInotify();
  if (context_ && timer_) context_->reactor().cancel(timer_);
  timer_ = 0;
  if (context_ && laggardTimer_) context_->reactor().cancel(laggardTimer_);
  laggardTimer_ = 0;
  if (hub_) hub_->notifyWhenRoom(0, {});
  if (alive_) alive_->factory = nullptr;
  alive_.reset();
  heldBack_.clear();
  if (tailer_) tailer_->close();
  tailer_.reset();
  context_ = nullptr;
}

// inotify on the log's directory (not the file: it sees the file being created,
// renamed away and recreated) wakes the tailer as soon as a line is written.
// Any event in the directory triggers one poll; the timer stays as the
// fallback for filesystems without inotify (NFS) and for missed events.
void WeblogFactory::startInotify() {
  std::string dir = settings_.accessLog;
  auto slash = dir.rfind('/');
  dir = slash == std::string::npos ? "." : slash == 0 ? "/" : dir.substr(0, slash);
  inotifyFd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotifyFd_ < 0) return;
  if (::inotify_add_watch(inotifyFd_, dir.c_str(),
                          IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE | IN_ATTRIB) < 0 ||
      !(inotifyWatch_ = context_->reactor().watchReadable(inotifyFd_, [this] { onInotify(); }))) {
    context_->logger().info("weblog: no inotify on " + dir + " (" + std::strerror(errno) + "); polling every " +
                            std::to_string(settings_.pollInterval.count()) + " ms");
    ::close(inotifyFd_);
    inotifyFd_ = -1;
  }
}

void WeblogFactory::stopInotify() {
  if (inotifyWatch_ && context_) context_->reactor().unwatch(inotifyWatch_);
  inotifyWatch_ = {};
  if (inotifyFd_ >= 0) ::close(inotifyFd_);
  inotifyFd_ = -1;
}

void WeblogFactory::onInotify() {
  alignas(inotify_event) char buf[4096];
  bool any = false;
  while (::read(inotifyFd_, buf, sizeof buf) > 0) any = true;  // drain: one poll covers them all
  if (any) pollLog();
}

std::unique_ptr<Protocol> WeblogFactory::buildProtocol() {
  return std::make_unique<WeblogProtocol>(*hub_, settings_);
}

void WeblogFactory::pollLog() {
  if (!tailer_) return;
  // A round reads a few budgets at most, then yields the factory's reactor
  // (a timer or post brings the rest): a huge backlog never blocks it for long.
  constexpr int kReadsPerRound = 8;
  for (int reads = 0;;) {
    if (publishHeldBack() && laggardTimer_) context_->reactor().cancel(std::exchange(laggardTimer_, 0));
    if (!heldBack_.empty()) {
      waitForRoom();
      return;
    }
    if (reads++ == kReadsPerRound) {
      pollSoon();
      return;
    }
    if (!readLog()) return;
  }
}

bool WeblogFactory::readLog() {
  const LogTailer::Stats before = tailer_->stats();
  std::vector<std::string> lines = tailer_->poll();
  const std::uint64_t overlong = tailer_->stats().longLinesSkipped - before.longLinesSkipped;
  const std::uint64_t cutOff = tailer_->stats().partialLinesDropped - before.partialLinesDropped;

  std::uint64_t unparsable = 0;
  std::string example;
  for (const auto& line : lines) {
    if (auto hit = formatLogLine(line)) {
      heldBack_.push_back(std::move(*hit));
    } else {
      if (unparsable++ == 0) example = excerpt(line);
    }
  }
  if (unparsable || overlong || cutOff) {
    unparsable_.fetch_add(unparsable, std::memory_order_relaxed);
    overlong_.fetch_add(overlong, std::memory_order_relaxed);
    cutOff_.fetch_add(cutOff, std::memory_order_relaxed);
  }
  reportSkipped(unparsable, overlong, cutOff, example);
  return tailer_->budgetSpent() || !lines.empty();
}

bool WeblogFactory::publishHeldBack() {
  if (heldBack_.empty()) return false;
  std::size_t room = hub_->room();
  std::vector<std::string> batch;
  while (!heldBack_.empty() && heldBack_.front().size() <= room) {
    room -= heldBack_.front().size();
    batch.push_back(std::move(heldBack_.front()));
    heldBack_.pop_front();
  }
  if (batch.empty()) return false;
  hub_->publish(std::move(batch));
  return true;
}

void WeblogFactory::waitForRoom() {
  Reactor* reactor = &context_->reactor();
  hub_->notifyWhenRoom(heldBack_.front().size(), [reactor, alive = alive_] {
    reactor->post([alive] {
      if (alive->factory) alive->factory->pollLog();
    });
  });
  if (!laggardTimer_)
    laggardTimer_ = reactor->callLater(kLaggardTimeout, [this] {
      laggardTimer_ = 0;
      onLaggardDeadline();
    });
}

void WeblogFactory::onLaggardDeadline() {
  if (heldBack_.empty()) return;
  const std::size_t cut = hub_->cutLaggards(heldBack_.front().size());
  if (cut && context_)
    context_->logger().warning("weblog: " + std::to_string(cut) + " client(s) did not take their hits within " +
                               std::to_string(kLaggardTimeout.count()) + " ms while the tailer waited; cutting them off");
  pollLog();
}

void WeblogFactory::pollSoon() {
  if (pollPosted_) return;  // one continuation at a time, however many wake-ups came
  pollPosted_ = true;
  context_->reactor().post([alive = alive_] {
    if (!alive->factory) return;
    alive->factory->pollPosted_ = false;
    alive->factory->pollLog();
  });
}

void WeblogFactory::reportSkipped(std::uint64_t unparsable, std::uint64_t overlong, std::uint64_t cutOff,
                                  const std::string& example) {
  pendingUnparsable_ += unparsable;
  pendingOverlong_ += overlong;
  pendingCutOff_ += cutOff;
  if (pendingExample_.empty() && !example.empty()) pendingExample_ = example;
  const std::uint64_t total = pendingUnparsable_ + pendingOverlong_ + pendingCutOff_;
  if (total == 0 || !context_) return;
  const auto now = context_->reactor().now();
  if (warnedOnce_ && now - lastWarning_ < kSkipWarningInterval) return;
  std::string message = "skipped " + std::to_string(total) + " access-log line(s) of " +
                        settings_.accessLog + ": " + std::to_string(pendingUnparsable_) +
                        " not Common/Combined Log Format, " + std::to_string(pendingOverlong_) +
                        " longer than max_line_bytes=" + std::to_string(settings_.maxLineBytes);
  if (pendingCutOff_) message += ", " + std::to_string(pendingCutOff_) + " unterminated at a rotation or truncation";
  if (!pendingExample_.empty()) message += "; e.g. \"" + pendingExample_ + "\"";
  if (warnedOnce_) message += " (at most one such warning per 10 s)";
  context_->logger().warning(message);
  warnedOnce_ = true;
  lastWarning_ = now;
  pendingUnparsable_ = pendingOverlong_ = pendingCutOff_ = 0;
  pendingExample_.clear();
}

}  // namespace protohost::plugins::weblog
