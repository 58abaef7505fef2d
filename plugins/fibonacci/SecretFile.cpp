#include "SecretFile.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <stdexcept>

#include "FileOps.h"

namespace protohost::plugins::fibonacci {

std::string readSecretFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) throw std::runtime_error(path + ": cannot open: " + errnoText(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw std::runtime_error(path + ": cannot stat: " + errnoText(errno));
  if (!S_ISREG(st.st_mode)) throw std::runtime_error(path + ": not a regular file");
  if (st.st_uid != ::geteuid())
    throw std::runtime_error(path + ": owned by uid " + std::to_string(st.st_uid) + ", not by the running user (uid " +
                             std::to_string(::geteuid()) + ")");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw std::runtime_error(path + ": mode " + mode + " lets group or others read it; it must be 0600 (chmod 600 " +
                             path + ")");
  }
  std::string content;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error(path + ": cannot read: " + errnoText(errno));
    if (n == 0) break;
    content.append(buffer, static_cast<std::size_t>(n));
    if (content.size() > 65536) throw std::runtime_error(path + ": larger than 64 KiB; expected one line");
  }
  content = content.substr(0, content.find('\n'));
  if (!content.empty() && content.back() == '\r') content.pop_back();
  if (content.empty()) throw std::runtime_error(path + ": empty; expected the password on its first line");
  return content;
}

}  // namespace protohost::plugins::fibonacci
