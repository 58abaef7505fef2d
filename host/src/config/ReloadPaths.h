#pragma once
// The paths a reload (HUP) reads, for ops/ServiceUserAccess to check once the
// host runs as its service user.

#include <vector>

#include "config/HostConfig.h"
#include "ops/ServiceUserAccess.h"

namespace protohost::host {

/// What a reload needs of @p config: its config file, plugins_dir and the
/// plugin file of every listener, as absolute paths.
std::vector<NeededPath> pathsNeededForReload(const HostConfig& config);

}  // namespace protohost::host
