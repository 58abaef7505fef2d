#pragma once
// Runs a shell command for a test (a client no one here wrote: openssl,
// python3, socat) and returns its exit status and what it printed.

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace protohost::testsupport {

struct RunResult {
  int status = -1;  // the exit status; 128 + N when signal N ended it; -1: could not start
  std::string out;  // stdout (and stderr with joinStderr)
};

/// Runs @p command with /bin/sh and waits for it; @p joinStderr adds "2>&1".
inline RunResult runCommand(const std::string& command, bool joinStderr = false) {
  RunResult r;
  FILE* p = ::popen((joinStderr ? command + " 2>&1" : command).c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

}  // namespace protohost::testsupport
