#pragma once
// One libpq connection, used blockingly by one worker thread, with a deadline
// on every step: libpq's asynchronous calls (PQconnectStartParams and
// PQconnectPoll, PQsendQueryParams, PQflush, PQconsumeInput) driven by poll()
// on the connection's socket until the deadline, so that an unreachable, hung
// or slow server costs at most the deadline, never a stuck thread.
//
// A step that times out or loses the connection closes it (PQfinish): a
// statement whose answer never came may still have been committed by the
// server, and the caller must treat its effect as unknown (for a reservation:
// the block is never used, a gap).
//
// Threads: not thread-safe; one thread at a time (the Sequence's writer).

#include <chrono>
#include <string>
#include <vector>

struct pg_conn;

namespace protohost::plugins::fibonacci {

class PgSession {
 public:
  using Clock = std::chrono::steady_clock;

  /// @p conninfo: a libpq connection string or URI (several hosts allowed);
  /// @p password overrides any in it (empty: libpq's own, e.g. PGPASSFILE).
  PgSession(std::string conninfo, std::string password);
  ~PgSession();  // closes the connection
  PgSession(const PgSession&) = delete;
  PgSession& operator=(const PgSession&) = delete;

  /// "" when @p conninfo parses as a libpq connection string or URI without a password, else what is wrong.
  static std::string checkConninfo(const std::string& conninfo);

  bool connected() const { return conn_ != nullptr; }
  /// Connects (when not connected). "" on success, else why not.
  std::string connect(Clock::time_point deadline);
  /// "host:port" of the connected server (for logs); "" when not connected.
  std::string server() const;
  /// Closes the connection (the next connect opens a new one).
  void close();

  struct Result {
    bool ok = false;
    std::string error;     ///< !ok: the server's or libpq's message, or "timed out after N ms"
    std::string sqlState;  ///< !ok and the server answered: its SQLSTATE (e.g. "23505")
    int rows = 0;          ///< rows returned (or affected, for a command without RETURNING)
    std::vector<std::string> firstColumn;  ///< the first column of each returned row, as text
  };
  /// One statement with text parameters $1..$n, in autocommit. Needs a connection.
  Result exec(const std::string& sql, const std::vector<std::string>& params, Clock::time_point deadline);

 private:
  // Waits until the socket is ready for @p events (POLLIN/POLLOUT) or the deadline passes.
  bool await(short events, Clock::time_point deadline);
  Result broken(const std::string& error);  // closes the connection

  std::string conninfo_;
  std::string password_;
  pg_conn* conn_ = nullptr;
};

}  // namespace protohost::plugins::fibonacci
