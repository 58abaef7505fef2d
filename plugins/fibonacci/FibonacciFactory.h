#pragma once
// [listener.NAME] plugin = fibonacci
//   state_file     = PATH   (default fibonacci.state, relative to the config file)
//   reserve_block  = 1024   (1..1000000 answers made durable per write)
//   max_index      = 100000 (1..10000000: the last answer number served; answer k is F(k+2))
//   max_line_bytes = 1024   (1..1048576: longer request lines get an error and are closed)
//   line_timeout_ms = 10000 (0..3600000, 0 = off: a request line must be complete this long
//                            after its first byte, against slowloris trickles)
//   store          = file   (file | postgres: one sequence shared by several hosts)
//   with store = postgres (errors with store = file):
//   postgres       = CONNINFO (required: a libpq connection string or URI; several hosts allowed)
//   postgres_password_file = PATH (optional: its first line; owned by the running user, mode 0600)
//   postgres_sequence = fibonacci (the sequence's row name)
//   postgres_timeout_ms = 2000 (1..600000: each call to PostgreSQL, connect included)
//
// The state is read in start() (not configure(), which `host --check-config`
// also runs): a corrupt file makes start throw StateError, and the host exits 65.
// Durable writes run on the host's worker pool (Reactor::deferToThread): with
// [host] worker_threads = 0, start throws (the listener does not start).
// With store = postgres, start does not contact PostgreSQL: the first block is
// reserved on a worker, and /readyz says not ready until it is.
// Threads: configure, start and stop on the host's thread for them; isReady
// on any; buildProtocol on reactor threads (see Factory.h).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "DetachableLogger.h"
#include "FileOps.h"
#include "PostgresCounter.h"
#include "Sequence.h"
#include "protohost/Factory.h"

namespace protohost::plugins::fibonacci {

class FibonacciFactory : public Factory {
 public:
  FibonacciFactory() = default;
  /// Tests: inject file-operation failures into the store.
  explicit FibonacciFactory(std::shared_ptr<FileOps> ops) : ops_(std::move(ops)) {}

  void configure(const ConfigView& config) override;
  void start(FactoryContext& context) override;
  void stop() override;
  bool isReady() const override;
  std::unique_ptr<Protocol> buildProtocol() override;

  const std::string& statePath() const { return statePath_; }
  const SequenceOptions& options() const { return options_; }
  std::size_t maxLineBytes() const { return maxLineBytes_; }
  bool sharedStore() const { return postgres_.has_value(); }
  /// store = postgres: its options (the password read from postgres_password_file).
  const std::optional<PostgresOptions>& postgres() const { return postgres_; }
  /// Null before start; closed (but alive, for isReady) after stop.
  Sequence* sequence() { return sequence_.get(); }

 private:
  std::shared_ptr<FileOps> ops_ = std::make_shared<FileOps>();
  std::string statePath_ = "fibonacci.state";
  SequenceOptions options_;
  std::size_t maxLineBytes_ = 1024;
  std::chrono::milliseconds lineTimeout_{10000};
  void configureStore(const ConfigView& config);

  std::optional<PostgresOptions> postgres_;
  // How often the retry timer asks Sequence::wantRetry (which itself waits retryInterval after a failure).
  static constexpr std::chrono::milliseconds kRetryPoll{200};
  // store = postgres: reservations are retried on the factory's reactor every
  // retryInterval while not ready, also when no request comes (a drained host).
  Reactor* reactor_ = nullptr;
  TimerId retryTimer_ = 0;
  struct LoggedSequence;  // the sequence and the DetachableLogger it logs into, in one allocation
  std::shared_ptr<Sequence> sequence_;
  std::shared_ptr<DetachableLogger> logger_;  // detached at stop
  // What isReady() reads from other threads: set once start succeeded; the
  // sequence lives until the factory is destroyed.
  std::atomic<Sequence*> published_{nullptr};
};

}  // namespace protohost::plugins::fibonacci
