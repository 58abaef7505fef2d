#pragma once
// After the switch to [host] user, a reload (HUP) re-reads the config file and
// loads plugins as that user. ServiceUserAccess checks at start, right after the
// switch, that it will be able to: a host that starts fine but can never reload
// is refused (exit 78) with the path it cannot reach, instead of failing at the
// first HUP.

#include <string>
#include <vector>

namespace protohost::host {

/// One path the service user must reach.
struct NeededPath {
  std::string path;  // absolute
  bool directory = false;  // true: must be searchable (x); false: a file, must be readable (r)
  std::string what;  // "config file", "plugins directory", "plugin file"
};

/// Checks @p needed with this process's real uid and gid (access(2): mode bits,
/// owner and ACLs as the kernel applies them), each directory on the way
/// included. Returns "" when all can be reached, else one line naming the first
/// path that cannot, e.g. "cannot search directory /root (mode 0700, owner
/// uid 0) on the way to config file /root/p/host.ini". Call after dropping
/// privileges; any thread.
std::string checkReachable(const std::vector<NeededPath>& needed);

}  // namespace protohost::host
