#include "base/PluginCall.h"

#include <cxxabi.h>

#include <cstdlib>
#include <exception>
#include <memory>
#include <typeinfo>

namespace protohost::host {

std::string describeCurrentException() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    // The thrown type's name, from the C++ runtime (libstdc++ and libc++ both have it).
    const std::type_info* type = abi::__cxa_current_exception_type();
    if (!type) return "non-standard exception";
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(type->name(), nullptr, nullptr, &status), std::free);
    return std::string("non-standard exception (") + (status == 0 && name ? name.get() : type->name()) + ")";
  }
}

}  // namespace protohost::host
