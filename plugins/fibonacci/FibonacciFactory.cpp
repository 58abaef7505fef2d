#include "FibonacciFactory.h"

#include "FibonacciProtocol.h"

#include <stdexcept>

namespace protohost::plugins::fibonacci {

void FibonacciFactory::configure(const ConfigView& config) {
  if (config.has("state_file") && config.getString("state_file").empty())
    config.fail("state_file", "must not be empty");
  statePath_ = config.getPath("state_file", "fibonacci.state");
  if (statePath_.back() == '/') config.fail("state_file", "must name a file, not a directory");
  options_.reserveBlock = static_cast<std::uint64_t>(config.getInt("reserve_block", 1024, 1, 1000000));
  options_.maxIndex = static_cast<std::uint64_t>(config.getInt("max_index", 100000, 1, 10000000));
  maxLineBytes_ = static_cast<std::size_t>(config.getInt("max_line_bytes", 1024, 1, 1048576));
  lineTimeout_ = std::chrono::milliseconds(config.getInt("line_timeout_ms", 10000, 0, 3600000));
}

void FibonacciFactory::start(FactoryContext& context) {
  // Durable writes run on the host's worker pool: without one, requests beyond
  // the durable block could only wait on the reactor. Refuse rather than serve that way.
  if (context.reactor().deferToThread([] {}, [](std::exception_ptr) {}) == WorkStatus::ShuttingDown)
    throw std::runtime_error(
        "fibonacci makes its answers durable on the host's worker threads, and there are none: set [host] "
        "worker_threads to 1 or more");
  auto store = std::make_unique<SequenceStore>(statePath_, context.logger(), ops_);
  auto sequence = std::make_shared<Sequence>(std::move(store), options_, context.logger());
  sequence->open();  // StateError -> the host exits 65
  sequence_ = std::move(sequence);
  published_.store(sequence_.get(), std::memory_order_release);
}

void FibonacciFactory::stop() {
  if (sequence_) sequence_->close();  // persists the exact next answer
}

bool FibonacciFactory::isReady() const {
  const Sequence* sequence = published_.load(std::memory_order_acquire);
  return sequence != nullptr && sequence->ready();
}

std::unique_ptr<Protocol> FibonacciFactory::buildProtocol() {
  if (!sequence_) return nullptr;
  auto protocol = std::make_unique<FibonacciProtocol>(sequence_, maxLineBytes_);
  protocol->setLineTimeout(lineTimeout_);
  return protocol;
}

}  // namespace protohost::plugins::fibonacci
