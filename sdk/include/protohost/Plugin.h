#pragma once
/// @file Plugin.h
/// Include once per plugin source that exports a factory:
///
///     PROTOHOST_EXPORT_FACTORY(echo, EchoFactory)
///
/// exports `EchoFactory` under the name "echo" (what `factory =` in the host's
/// config selects; the default factory is the plugin's file name) through
/// BOOST_DLL_ALIAS, and this header defines the plugin's ABI record. A factory
/// that only builds protocols is one line (SimpleFactory.h, since SDK 1.3):
///
///     PROTOHOST_EXPORT_PROTOCOL(echo, EchoProtocol)
///
/// This is the one SDK header that is not standard-library only: it uses
/// Boost.DLL's alias macro (header-only), as the host loads plugins with Boost.DLL.

#include <memory>

#include "protohost/Factory.h"
#include "protohost/PluginAbi.h"
#include "protohost/SimpleFactory.h"

#ifndef BOOST_DLL_USE_STD_FS
// Keeps Boost.System's GNU-unique symbols out of the plugin, so it can be unloaded.
#define BOOST_DLL_USE_STD_FS
#endif
#include <boost/dll/alias.hpp>

// Weak: every translation unit that includes this header defines the same record
// and the linker keeps one. (extern "C" on the declaration itself gives the
// const object external linkage.)
extern "C" __attribute__((weak, visibility("default"))) const ProtohostPluginInfo protohost_plugin_info = {
    PROTOHOST_PLUGIN_MAGIC,
    static_cast<std::uint32_t>(sizeof(ProtohostPluginInfo)),
    PROTOHOST_SDK_VERSION_MAJOR,
    PROTOHOST_SDK_VERSION_MINOR,
    PROTOHOST_CXX11_ABI,
    static_cast<std::uint32_t>(sizeof(void*)),
    PROTOHOST_COMPILER_TAG,
};

/// Exports FactoryClass (default-constructible, derived from protohost::Factory)
/// under NAME, an identifier such as echo or daytime.
#define PROTOHOST_EXPORT_FACTORY(NAME, FactoryClass)                                   \
  namespace protohost_exports_##NAME {                                                \
  inline std::unique_ptr<::protohost::Factory> create() {                             \
    return std::make_unique<FactoryClass>();                                          \
  }                                                                                   \
  }                                                                                   \
  BOOST_DLL_ALIAS(protohost_exports_##NAME::create, protohost_factory_##NAME)

/// Exports a SimpleFactory<ProtocolClass> (each connection gets
/// std::make_unique<ProtocolClass>()) under NAME (Twisted's Factory.forProtocol).
#define PROTOHOST_EXPORT_PROTOCOL(NAME, ProtocolClass) \
  PROTOHOST_EXPORT_FACTORY(NAME, ::protohost::SimpleFactory<ProtocolClass>)
