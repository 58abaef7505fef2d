#pragma once
// The `host` command: Poco's ServerApplication (for --daemon, --pidfile,
// --umask) with the host's own options and one sigwait loop for signals.

#include <Poco/Util/ServerApplication.h>

#include <string>

namespace protohost::host {

class Server;

/// Poco's Application installs a handler that turns SIGSEGV, SIGBUS, SIGILL and
/// SIGSYS into abort(): a crashing plugin would then look like SIGABRT to a
/// supervisor and to core-dump tooling. Puts the default actions back.
void restoreCrashSignals();

class HostApplication : public Poco::Util::ServerApplication {
 public:
  /// @param startDir the working directory at process start: --daemon changes
  /// it to "/", so a relative --config is resolved against this.
  explicit HostApplication(std::string startDir);

  /// Checks argv against the options before Poco's run() sees it, which would
  /// exit 78 (EX_CONFIG) for a typo. Returns 0, or 64 (EX_USAGE) after printing why.
  int validateArguments(int argc, char** argv);

 protected:
  void defineOptions(Poco::Util::OptionSet& options) override;
  void handleOption(const std::string& name, const std::string& value) override;
  int main(const std::vector<std::string>& args) override;

 private:
  int listPlugins();
  int serve();
  void reload(Server& server);

  std::string startDir_;
  std::string configPath_;     // absolute
  std::string configDisplay_;  // as given on the command line, for messages
  bool help_ = false;
  bool version_ = false;
  bool checkConfig_ = false;
  bool listPlugins_ = false;
};

}  // namespace protohost::host
