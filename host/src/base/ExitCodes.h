#pragma once
// sysexits(3) codes the host exits with.
namespace protohost::host::exit_code {
inline constexpr int kOk = 0;
inline constexpr int kSoftware = 70;  // internal error; a stop that did not finish in time (StopDeadline)
inline constexpr int kUsage = 64;     // bad command line
inline constexpr int kDataErr = 65;   // corrupt state (a plugin refused its state file)
inline constexpr int kNoInput = 66;   // config file missing
inline constexpr int kConfig = 78;    // bad configuration, plugin or bind failure
}  // namespace protohost::host::exit_code
