#include "FibonacciFactory.h"

#include "FibonacciProtocol.h"
#include "PgSession.h"
#include "SecretFile.h"
#include "SharedStore.h"
#include "WriteAhead.h"

#include <functional>
#include <stdexcept>

namespace protohost::plugins::fibonacci {

struct FibonacciFactory::LoggedSequence {
  LoggedSequence(Logger& target, const std::function<std::unique_ptr<ReservationStore>(Logger&)>& makeStore,
                 const SequenceOptions& options)
      : logger(target), sequence(makeStore(logger), options, logger) {}
  DetachableLogger logger;  // first: the sequence and its store log into it
  Sequence sequence;
};

void FibonacciFactory::configure(const ConfigView& config) {
  if (config.has("state_file") && config.getString("state_file").empty())
    config.fail("state_file", "must not be empty");
  statePath_ = config.getPath("state_file", "fibonacci.state");
  if (statePath_.back() == '/') config.fail("state_file", "must name a file, not a directory");
  options_.reserveBlock = static_cast<std::uint64_t>(config.getInt("reserve_block", 1024, 1, 1000000));
  options_.maxIndex = static_cast<std::uint64_t>(config.getInt("max_index", 100000, 1, 10000000));
  maxLineBytes_ = static_cast<std::size_t>(config.getInt("max_line_bytes", 1024, 1, 1048576));
  lineTimeout_ = std::chrono::milliseconds(config.getInt("line_timeout_ms", 10000, 0, 3600000));
  configureStore(config);
}

void FibonacciFactory::configureStore(const ConfigView& config) {
  const bool postgres = config.getChoice("store", "file", {"file", "postgres"}) == "postgres";
  for (const char* key : {"postgres", "postgres_password_file", "postgres_sequence", "postgres_timeout_ms"})
    if (config.has(key) && !postgres) config.fail(key, "only with store = postgres");
  postgres_.reset();
  if (!postgres) return;
  PostgresOptions o;
  o.conninfo = config.requireString("postgres");
  if (o.conninfo.empty()) config.fail("postgres", "must not be empty (a libpq connection string or URI)");
  if (std::string e = PgSession::checkConninfo(o.conninfo); !e.empty()) config.fail("postgres", e);
  if (config.has("postgres_password_file")) {
    try {
      o.password = readSecretFile(config.getPath("postgres_password_file"));
    } catch (const std::exception& e) {
      config.fail("postgres_password_file", e.what());
    }
  }
  o.sequence = config.getString("postgres_sequence", "fibonacci");
  if (o.sequence.empty() || o.sequence.size() > 200)
    config.fail("postgres_sequence", "must be 1 to 200 characters");
  o.timeout = std::chrono::milliseconds(config.getInt("postgres_timeout_ms", 2000, 1, 600000));
  postgres_ = std::move(o);
}

void FibonacciFactory::start(FactoryContext& context) {
  // Durable writes run on the host's worker pool: without one, requests beyond
  // the durable block could only wait on the reactor. Refuse rather than serve that way.
  if (context.reactor().deferToThread([] {}, [](std::exception_ptr) {}) == WorkStatus::ShuttingDown)
    throw std::runtime_error(
        "fibonacci makes its answers durable on the host's worker threads, and there are none: set [host] "
        "worker_threads to 1 or more");
  // One allocation holds the sequence and the logger it (and its store) write to, so that
  // the logger lives as long as any work that still holds the sequence.
  auto logged = std::make_shared<LoggedSequence>(context.logger(), [this](Logger& logger) {
    auto local = std::make_unique<SequenceStore>(statePath_, logger, ops_);
    if (!postgres_) return std::unique_ptr<ReservationStore>(std::move(local));
    return std::unique_ptr<ReservationStore>(std::make_unique<SharedStore>(
        std::move(local), std::make_unique<PostgresCounter>(*postgres_, logger), logger));
  }, options_);
  auto sequence = std::shared_ptr<Sequence>(logged, &logged->sequence);
  sequence->open();  // StateError -> the host exits 65
  logger_ = std::shared_ptr<DetachableLogger>(logged, &logged->logger);
  sequence_ = std::move(sequence);
  published_.store(sequence_.get(), std::memory_order_release);
  if (postgres_) {
    // The first block, and every retry while failing, also when no request comes.
    reactor_ = &context.reactor();
    std::weak_ptr<Sequence> weak = sequence_;
    auto retry = [reactor = reactor_, weak] {
      if (auto s = weak.lock(); s && s->wantRetry()) (void)deferWriteAhead(*reactor, s);
    };
    retry();
    retryTimer_ = reactor_->callEvery(kRetryPoll, retry);
  }
}

void FibonacciFactory::stop() {
  if (reactor_ && retryTimer_ != 0) reactor_->cancel(retryTimer_);
  retryTimer_ = 0;
  reactor_ = nullptr;
  if (sequence_) sequence_->close();  // persists the exact next answer
  if (logger_) logger_->detach();  // the context's logger is not ours after stop returns
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
