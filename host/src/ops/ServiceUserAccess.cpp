#include "ops/ServiceUserAccess.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iterator>

namespace protohost::host {
namespace fs = std::filesystem;

namespace {

// " (mode 0700, owner uid 0 gid 0)", or "" when the path cannot be stat'ed.
std::string describeMode(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return {};
  char buf[80];
  std::snprintf(buf, sizeof buf, " (mode %04o, owner uid %u gid %u)", static_cast<unsigned>(st.st_mode & 07777),
                static_cast<unsigned>(st.st_uid), static_cast<unsigned>(st.st_gid));
  return buf;
}

std::string denied(const char* verb, const std::string& kind, const fs::path& p, const NeededPath& need) {
  const int error = errno;
  std::string why = std::string("cannot ") + verb + " " + kind + " " + p.string() + describeMode(p);
  if (p != fs::path(need.path)) why += " on the way to " + need.what + " " + need.path;
  return why + " (" + std::strerror(error) + ")";
}

}  // namespace

std::string checkReachable(const std::vector<NeededPath>& needed) {
  for (const auto& need : needed) {
    const fs::path target = fs::path(need.path).lexically_normal();
    // Every directory on the way, from the root down, must be searchable: that
    // names the directory at fault, which access() on the whole path would not.
    // A path that does not exist is left to the loader or the reload to report.
    std::string why;
    fs::path dir;
    for (auto it = target.begin(); why.empty() && it != target.end() && std::next(it) != target.end(); ++it) {
      dir /= *it;
      if (::access(dir.c_str(), X_OK) != 0 && errno != ENOENT) why = denied("search", "directory", dir, need);
    }
    if (why.empty() && ::access(target.c_str(), need.directory ? X_OK : R_OK) != 0 && errno != ENOENT)
      why = denied(need.directory ? "search" : "read", need.what, target, need);
    if (!why.empty()) return why;
  }
  return {};
}

}  // namespace protohost::host
