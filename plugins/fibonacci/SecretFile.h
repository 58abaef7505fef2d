#pragma once
// Reads a secret (postgres_password_file) the way libpq treats ~/.pgpass: a
// regular file owned by the running user, with no access for group or others
// (mode 0600 or stricter), or it is refused.

#include <string>

namespace protohost::plugins::fibonacci {

/// The file's first line (without its line ending). Throws std::runtime_error
/// saying what is wrong: cannot open, not a regular file, owner, mode, empty.
/// Thread: any.
std::string readSecretFile(const std::string& path);

}  // namespace protohost::plugins::fibonacci
