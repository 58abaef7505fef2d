#include "config/ReloadPaths.h"

#include <filesystem>

namespace protohost::host {

std::vector<NeededPath> pathsNeededForReload(const HostConfig& config) {
  const std::string configFile = (std::filesystem::path(config.baseDir) / std::filesystem::path(config.path).filename()).string();
  std::vector<NeededPath> out{{configFile, false, "config file"}, {config.pluginsDir, true, "plugins directory"}};
  for (const auto& spec : config.listeners)
    out.push_back({config.pluginsDir + "/" + spec.plugin + ".so", false, "plugin file"});
  return out;
}

}  // namespace protohost::host
