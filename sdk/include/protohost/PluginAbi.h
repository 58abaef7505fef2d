#pragma once
/// @file PluginAbi.h
/// The C-layout record every plugin exports next to its factories. The host
/// reads it from the plugin's file before it loads the library (so no code of
/// the plugin runs first) and refuses a plugin whose record is missing, foreign
/// or stale, saying which field differs.

#include <cstdint>

#include "protohost/Version.h"

#define PROTOHOST_STRINGIFY_(x) #x
#define PROTOHOST_STRINGIFY(x) PROTOHOST_STRINGIFY_(x)

#if defined(__clang__)
#define PROTOHOST_COMPILER_TAG "clang-" PROTOHOST_STRINGIFY(__clang_major__)
#elif defined(__GNUC__)
#define PROTOHOST_COMPILER_TAG "gcc-" PROTOHOST_STRINGIFY(__GNUC__)
#else
#define PROTOHOST_COMPILER_TAG "unknown"
#endif

#if defined(_GLIBCXX_USE_CXX11_ABI)
#define PROTOHOST_CXX11_ABI _GLIBCXX_USE_CXX11_ABI
#else
#define PROTOHOST_CXX11_ABI (-1)
#endif

extern "C" {

/// "PHPI" in little-endian byte order.
#define PROTOHOST_PLUGIN_MAGIC 0x49504850u

/// Exported by every plugin as `protohost_plugin_info`. Append-only: new fields
/// go at the end, and struct_size tells the host how much of it exists.
struct ProtohostPluginInfo {
  std::uint32_t magic;         ///< PROTOHOST_PLUGIN_MAGIC
  std::uint32_t struct_size;   ///< sizeof(ProtohostPluginInfo) at build time
  std::uint16_t sdk_major;     ///< PROTOHOST_SDK_VERSION_MAJOR at build time
  std::uint16_t sdk_minor;     ///< PROTOHOST_SDK_VERSION_MINOR at build time
  std::int32_t cxx11_abi;      ///< _GLIBCXX_USE_CXX11_ABI, -1 when not libstdc++
  std::uint32_t pointer_size;  ///< sizeof(void*)
  const char* compiler;        ///< PROTOHOST_COMPILER_TAG, e.g. "gcc-12"
};

}  // extern "C"

namespace protohost {
/// The alias under which a factory named NAME is exported.
inline constexpr const char* kFactoryAliasPrefix = "protohost_factory_";
/// The symbol name of the ABI record.
inline constexpr const char* kPluginInfoSymbol = "protohost_plugin_info";
}  // namespace protohost
