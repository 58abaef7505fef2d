#pragma once
// SharedCounter on PostgreSQL: one row per named sequence in
// protohost_sequences (created on first use, CREATE TABLE IF NOT EXISTS when
// to_regclass does not find it), one autocommit statement per block:
//   UPDATE protohost_sequences SET next = next + $2 WHERE name = $1 RETURNING next - $2
// A commit is durable (and, with a synchronous standby, replicated) before the
// answer comes back, unless the server runs with synchronous_commit = off: then
// the session sets it back to on (logged).
//
// A missing row is seeded with
//   INSERT INTO protohost_sequences (name, next) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING
// so when two hosts seed at once, one row wins and both then reserve from it.
//
// Every call has the deadline postgres_timeout_ms (connect included). A
// connection that fails, times out or breaks is closed; the next call opens a
// new one (libpq follows several hosts and target_session_attrs by itself).
// After a failed connect, connects back off: 250 ms, doubling up to 4 s; a call
// during the back-off fails at once.
//
// Threads: not thread-safe; one thread at a time (SharedStore's caller, a worker).

#include <chrono>
#include <cstdint>
#include <string>

#include "PgSession.h"
#include "SharedCounter.h"
#include "protohost/Logger.h"

namespace protohost::plugins::fibonacci {

struct PostgresOptions {
  std::string conninfo;             ///< postgres: a libpq connection string or URI
  std::string password;             ///< from postgres_password_file ("" = libpq's own: PGPASSFILE, ~/.pgpass)
  std::string sequence = "fibonacci";  ///< postgres_sequence: the row's name
  std::chrono::milliseconds timeout{2000};  ///< postgres_timeout_ms: each call, connect included
  std::chrono::milliseconds backoffMin{250};
  std::chrono::milliseconds backoffMax{4000};
};

class PostgresCounter : public SharedCounter {
 public:
  PostgresCounter(PostgresOptions options, Logger& logger);

  Taken take(std::uint64_t block, std::uint64_t seed) override;
  std::string raiseTo(std::uint64_t floor) override;
  bool giveBack(std::uint64_t expected, std::uint64_t next) override;
  std::string label() const override;

  /// giveBack's deadline (or postgres_timeout_ms when shorter): it runs at stop, perhaps on a reactor.
  static constexpr std::chrono::milliseconds kGiveBackTimeout{250};

 private:
  using Clock = PgSession::Clock;
  // Connected, with the schema checked: "" or why not (connect errors start the back-off).
  std::string ready(Clock::time_point deadline);
  // A statement; a failed one is reported as "what: error".
  PgSession::Result run(const char* what, const std::string& sql, const std::vector<std::string>& params,
                        Clock::time_point deadline, std::string& error);

  PostgresOptions options_;
  Logger& logger_;
  PgSession session_;
  bool prepared_ = false;  // this connection checked the table and synchronous_commit
  Clock::time_point nextConnect_{};
  std::chrono::milliseconds backoff_;
  std::string lastConnectError_;
};

}  // namespace protohost::plugins::fibonacci
