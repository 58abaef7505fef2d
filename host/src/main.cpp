// host: entry point. Blocks the signals the host handles before any thread
// exists (so only the signal thread, SignalThread.h, sees them: Poco's
// ServerApplication would let SIGHUP kill the process), then runs the application.

#include <signal.h>
#include <unistd.h>

#include <climits>
#include <iostream>

#include "base/ExitCodes.h"
#include "HostApplication.h"
#include "base/Log.h"

namespace {
constexpr std::chrono::milliseconds kFinalLogFlush{500};
}  // namespace

int main(int argc, char** argv) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGHUP, SIGUSR1, SIGTERM, SIGINT, SIGQUIT}) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  char cwd[PATH_MAX];
  std::string startDir = getcwd(cwd, sizeof cwd) ? cwd : "/";
  try {
    protohost::host::HostApplication app(startDir);
    protohost::host::restoreCrashSignals();
    if (int rc = app.validateArguments(argc, argv)) return rc;
    const int rc = app.run(argc, argv);
    // The log's last lines (its writer thread may hold some); not forever: the
    // output may be a pipe nobody reads.
    protohost::host::Log::instance().flush(kFinalLogFlush);
    return rc;
  } catch (const std::exception& e) {
    std::cerr << "host: " << e.what() << "\n";
    protohost::host::Log::instance().flush(kFinalLogFlush);
    return protohost::host::exit_code::kSoftware;
  }
}
