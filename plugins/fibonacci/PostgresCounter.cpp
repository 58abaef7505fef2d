#include "PostgresCounter.h"

#include <algorithm>
#include <charconv>

namespace protohost::plugins::fibonacci {

namespace {
constexpr const char* kFind = "SELECT to_regclass('protohost_sequences') IS NOT NULL";
constexpr const char* kCreate =
    "CREATE TABLE IF NOT EXISTS protohost_sequences (name text PRIMARY KEY, next bigint NOT NULL CHECK (next >= 1))";
constexpr const char* kReserve = "UPDATE protohost_sequences SET next = next + $2 WHERE name = $1 RETURNING next - $2";
constexpr const char* kSeed =
    "INSERT INTO protohost_sequences (name, next) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
constexpr const char* kRaise = "UPDATE protohost_sequences SET next = $2 WHERE name = $1 AND next < $2";
constexpr const char* kGiveBack = "UPDATE protohost_sequences SET next = $3 WHERE name = $1 AND next = $2";

bool parseUnsigned(const std::string& text, std::uint64_t& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size() && !text.empty();
}
}  // namespace

PostgresCounter::PostgresCounter(PostgresOptions options, Logger& logger)
    : options_(std::move(options)),
      logger_(logger),
      session_(options_.conninfo, options_.password),
      backoff_(options_.backoffMin) {}

std::string PostgresCounter::label() const { return "PostgreSQL sequence \"" + options_.sequence + "\""; }

PgSession::Result PostgresCounter::run(const char* what, const std::string& sql,
                                       const std::vector<std::string>& params, Clock::time_point deadline,
                                       std::string& error) {
  PgSession::Result r = session_.exec(sql, params, deadline);
  if (!r.ok) {
    error = std::string(what) + ": " + r.error;
    if (!session_.connected()) prepared_ = false;
  }
  return r;
}

std::string PostgresCounter::ready(Clock::time_point deadline) {
  if (!session_.connected()) {
    prepared_ = false;
    const Clock::time_point now = Clock::now();
    if (now < nextConnect_)
      return "reconnecting in " +
             std::to_string(std::chrono::ceil<std::chrono::milliseconds>(nextConnect_ - now).count()) +
             " ms (last attempt: " + lastConnectError_ + ")";
    if (std::string e = session_.connect(deadline); !e.empty()) {
      lastConnectError_ = "cannot connect: " + e;
      nextConnect_ = Clock::now() + backoff_;
      backoff_ = std::min(backoff_ * 2, options_.backoffMax);
      return lastConnectError_;
    }
    backoff_ = options_.backoffMin;
    logger_.info("connected to PostgreSQL at " + session_.server() + " for " + label());
  }
  if (prepared_) return "";
  std::string error;
  // Created only when missing: CREATE TABLE IF NOT EXISTS would need CREATE on the schema every time
  // (PostgreSQL checks it before it looks for the table), which a user of an existing table may lack.
  PgSession::Result r = run("look for the table", kFind, {}, deadline, error);
  if (!r.ok) return error;
  if (r.firstColumn.empty() || r.firstColumn[0] != "t") {
    r = run("create table", kCreate, {}, deadline, error);
    // Two sessions creating it at once: one may see a unique violation on the catalog; the table exists then.
    if (!r.ok && (!session_.connected() || (r.sqlState != "23505" && r.sqlState != "42P07"))) return error;
  }
  r = run("read synchronous_commit", "SELECT current_setting('synchronous_commit')", {}, deadline, error);
  if (!r.ok) return error;
  if (!r.firstColumn.empty() && r.firstColumn[0] == "off") {
    // With off, the server acknowledges a commit before it is on disk: a crash could hand a block out twice.
    r = run("set synchronous_commit", "SET synchronous_commit TO on", {}, deadline, error);
    if (!r.ok) return error;
    logger_.warning("PostgreSQL at " + session_.server() +
                    " runs with synchronous_commit = off; this session sets it to on (a reservation must be durable "
                    "before it is used)");
  }
  prepared_ = true;
  return "";
}

SharedCounter::Taken PostgresCounter::take(std::uint64_t block, std::uint64_t seed) {
  Taken t;
  const Clock::time_point deadline = Clock::now() + options_.timeout;
  if (t.error = ready(deadline); !t.error.empty()) return t;
  const std::vector<std::string> reserve{options_.sequence, std::to_string(block)};
  PgSession::Result r = run("reserve", kReserve, reserve, deadline, t.error);
  if (!r.ok) return t;
  if (r.rows == 0) {  // a new sequence: seed it from this host's high-water mark; one host wins
    if (!run("seed", kSeed, {options_.sequence, std::to_string(seed)}, deadline, t.error).ok) return t;
    r = run("reserve", kReserve, reserve, deadline, t.error);
    if (!r.ok) return t;
    if (r.rows == 1) logger_.info(label() + " created at answer number " + std::to_string(seed) + " (or by another host at once)");
  }
  if (r.rows != 1 || r.firstColumn.size() != 1 || !parseUnsigned(r.firstColumn[0], t.start) || t.start == 0) {
    t.error = "reserve: unexpected answer (" + std::to_string(r.rows) + " rows" +
              (r.firstColumn.empty() ? std::string() : ", \"" + r.firstColumn[0] + "\"") + ")";
    return t;
  }
  t.ok = true;
  return t;
}

std::string PostgresCounter::raiseTo(std::uint64_t floor) {
  const Clock::time_point deadline = Clock::now() + options_.timeout;
  if (std::string e = ready(deadline); !e.empty()) return e;
  std::string error;
  (void)run("raise", kRaise, {options_.sequence, std::to_string(floor)}, deadline, error);
  return error;
}

bool PostgresCounter::giveBack(std::uint64_t expected, std::uint64_t next) {
  if (!session_.connected() || !prepared_) return false;  // never a new connection at stop
  // At stop, which may run on a reactor: one round trip on the open connection, briefly.
  const Clock::time_point deadline = Clock::now() + std::min(options_.timeout, kGiveBackTimeout);
  std::string error;
  PgSession::Result r =
      run("give back", kGiveBack, {options_.sequence, std::to_string(expected), std::to_string(next)}, deadline, error);
  return r.ok && r.rows == 1;
}

}  // namespace protohost::plugins::fibonacci
