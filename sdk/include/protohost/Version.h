#pragma once
/// @file Version.h
/// The SDK's ABI version. The major number changes with every incompatible
/// change to an SDK class layout or virtual table; the host refuses plugins
/// built against another major, or against a newer minor than its own.
/// 1.1: Reactor::watchReadable / unwatch (appended: 1.0 plugins still load).
/// 1.2: Transport::whenDrained (appended: 1.0 and 1.1 plugins still load).
/// 1.3: Transport::readingPaused / whenReadingResumed (appended), used by
///      LineProtocol to stop at a pause within a chunk; Reactor's watch ids are
///      WatchId instead of TimerId (a source change only: same binary interface);
///      Reactor::watchFd / modifyWatch / connect / cancelConnect / deferToThread,
///      Transport::shutdownWrite / writeSequence / handle, FactoryContext::handle
///      (all appended), Protocol::dataReceived no longer pure (same slot);
///      DatagramProtocol / DatagramTransport (new classes) and
///      Factory::buildDatagramProtocol (appended; the host calls it only on
///      plugins whose ABI record says 1.3 or later).

#define PROTOHOST_SDK_VERSION_MAJOR 1
#define PROTOHOST_SDK_VERSION_MINOR 3

namespace protohost {
inline constexpr int kSdkVersionMajor = PROTOHOST_SDK_VERSION_MAJOR;
inline constexpr int kSdkVersionMinor = PROTOHOST_SDK_VERSION_MINOR;
}  // namespace protohost
