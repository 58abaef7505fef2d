#pragma once
// Dropping root after the listeners are bound ([host] user/group), as nginx
// and twistd do: ports below 1024 work, then the process runs unprivileged.

#include <string>
#include <sys/types.h>

namespace protohost::host {

struct ServiceIdentity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string user;  // empty: no change
};

/// Resolves @p user and @p group (group defaults to the user's primary group).
/// Returns false and sets @p error for an unknown name.
bool resolveIdentity(const std::string& user, const std::string& group, ServiceIdentity& out, std::string& error);

/// Switches to @p id: supplementary groups cleared, then gid, then uid; checks
/// that root cannot be regained. Returns false and sets @p error on failure.
bool dropPrivileges(const ServiceIdentity& id, std::string& error);

}  // namespace protohost::host
