#include "ops/Privileges.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace protohost::host {

bool resolveIdentity(const std::string& user, const std::string& group, ServiceIdentity& out, std::string& error) {
  if (user.empty()) return true;
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found) {
    error = "unknown user \"" + user + "\"";
    return false;
  }
  out.user = user;
  out.uid = pw.pw_uid;
  out.gid = pw.pw_gid;
  if (!group.empty()) {
    ::group gr{};
    ::group* g = nullptr;
    if (::getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &g) != 0 || !g) {
      error = "unknown group \"" + group + "\"";
      return false;
    }
    out.gid = gr.gr_gid;
  }
  return true;
}

bool dropPrivileges(const ServiceIdentity& id, std::string& error) {
  if (id.user.empty()) return true;
  if (::geteuid() != 0) {
    if (::geteuid() == id.uid) return true;  // already that user
    error = "user = " + id.user + " needs the host to start as root";
    return false;
  }
  if (::setgroups(0, nullptr) != 0 || ::setgid(id.gid) != 0 || ::setuid(id.uid) != 0) {
    error = std::string("cannot switch to user ") + id.user + ": " + std::strerror(errno);
    return false;
  }
  if (id.uid != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0)) {
    error = "privileges could be regained after switching to " + id.user;
    return false;
  }
  return true;
}

}  // namespace protohost::host
