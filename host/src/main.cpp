// host: entry point. Blocks the signals the host handles before any thread
// exists (so only the sigwait loop sees them: Poco's ServerApplication would
// let SIGHUP kill the process), then runs the application.

#include <signal.h>
#include <unistd.h>

#include <climits>
#include <iostream>

#include "ExitCodes.h"
#include "HostApplication.h"

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
    return app.run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "host: " << e.what() << "\n";
    return protohost::host::exit_code::kSoftware;
  }
}
