#include "PgSession.h"

#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <cstdlib>
#include <memory>

namespace protohost::plugins::fibonacci {

namespace {
std::string trimmed(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (char& c : s)
    if (c == '\n') c = ' ';
  return s;
}
}  // namespace

PgSession::PgSession(std::string conninfo, std::string password)
    : conninfo_(std::move(conninfo)), password_(std::move(password)) {}

PgSession::~PgSession() { close(); }

std::string PgSession::checkConninfo(const std::string& conninfo) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  std::string message = options ? "" : (error ? trimmed(error) : "out of memory");
  for (PQconninfoOption* o = options; o && o->keyword; ++o)
    if (std::string(o->keyword) == "password" && o->val && *o->val)
      message = "holds a password; put it in postgres_password_file (mode 0600) or libpq's PGPASSFILE, never in the INI";
  if (options) PQconninfoFree(options);
  if (error) PQfreemem(error);
  return message;
}

void PgSession::close() {
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
}

std::string PgSession::server() const {
  if (!conn_) return "";
  return std::string(PQhost(conn_)) + ":" + PQport(conn_);
}

bool PgSession::await(short events, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{PQsocket(conn_), events, 0};
    if (p.fd < 0) return false;
    const int n = ::poll(&p, 1, static_cast<int>(left));
    if (n > 0) return true;  // ready, or an error the next libpq call reports
    if (n < 0 && errno != EINTR) return false;
  }
}

std::string PgSession::connect(Clock::time_point deadline) {
  if (conn_) return "";
  // The password after the expanded connection string overrides one in it (libpq: later keywords win).
  const char* keys[] = {"dbname", "password", "fallback_application_name", nullptr};
  const char* values[] = {conninfo_.c_str(), password_.empty() ? nullptr : password_.c_str(), "protohost-fibonacci",
                          nullptr};
  conn_ = PQconnectStartParams(keys, values, 1);
  if (!conn_) return "out of memory";
  if (PQstatus(conn_) == CONNECTION_BAD) {
    std::string error = trimmed(PQerrorMessage(conn_));
    close();
    return error;
  }
  PostgresPollingStatusType status = PGRES_POLLING_WRITING;
  while (status != PGRES_POLLING_OK) {
    if (status == PGRES_POLLING_FAILED) {
      std::string error = trimmed(PQerrorMessage(conn_));
      close();
      return error;
    }
    if (!await(status == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline)) {
      close();
      return "no connection within the timeout";
    }
    status = PQconnectPoll(conn_);
  }
  // Notices (e.g. "relation ... already exists, skipping") would go to the host's stderr unformatted.
  PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);
  if (PQsetnonblocking(conn_, 1) != 0) {
    std::string error = trimmed(PQerrorMessage(conn_));
    close();
    return error;
  }
  return "";
}

PgSession::Result PgSession::broken(const std::string& error) {
  close();
  Result r;
  r.error = error;
  return r;
}

PgSession::Result PgSession::exec(const std::string& sql, const std::vector<std::string>& params,
                                  Clock::time_point deadline) {
  if (!conn_) return broken("not connected");
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.c_str());
  if (!PQsendQueryParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                         nullptr, 0))
    return broken(trimmed(PQerrorMessage(conn_)));
  for (;;) {  // send it all
    const int f = PQflush(conn_);
    if (f == 0) break;
    if (f < 0) return broken(trimmed(PQerrorMessage(conn_)));
    if (!await(POLLIN | POLLOUT, deadline)) return broken("timed out sending the statement");
    if (!PQconsumeInput(conn_)) return broken(trimmed(PQerrorMessage(conn_)));
  }
  Result result;
  bool answered = false;
  for (;;) {  // every result until the null one
    while (PQisBusy(conn_)) {
      if (!await(POLLIN, deadline)) return broken("timed out waiting for the answer");
      if (!PQconsumeInput(conn_)) return broken(trimmed(PQerrorMessage(conn_)));
    }
    PGresult* raw = PQgetResult(conn_);
    if (!raw) break;
    std::unique_ptr<PGresult, void (*)(PGresult*)> res(raw, PQclear);
    answered = true;
    const ExecStatusType status = PQresultStatus(raw);
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
      result.ok = true;
      result.rows = status == PGRES_TUPLES_OK ? PQntuples(raw) : std::atoi(PQcmdTuples(raw));
      for (int i = 0; status == PGRES_TUPLES_OK && i < PQntuples(raw) && PQnfields(raw) > 0; ++i)
        result.firstColumn.emplace_back(PQgetvalue(raw, i, 0));
    } else {
      result.ok = false;
      result.error = trimmed(PQresultErrorMessage(raw));
      const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
      result.sqlState = state ? state : "";
    }
  }
  if (!answered) return broken(trimmed(PQerrorMessage(conn_)));
  if (PQstatus(conn_) == CONNECTION_BAD) {
    std::string error = result.error.empty() ? trimmed(PQerrorMessage(conn_)) : result.error;
    Result r = broken(error);
    r.sqlState = result.sqlState;
    return r;
  }
  return result;
}

}  // namespace protohost::plugins::fibonacci
