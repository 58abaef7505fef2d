#pragma once
// The portforward listener's keys ([listener.NAME] in host.ini), read and
// checked once by Factory::configure. Every error names the key and its line.

#include <cstddef>
#include <string>

#include "protohost/ConfigView.h"

namespace protohost::plugins::portforward {

/// Which PROXY protocol header goes upstream before the client's bytes (HAProxy's send-proxy).
enum class SendProxy { Off, V1, V2 };

struct Settings {
  /// "tcp:HOST:PORT" or "ssl:HOST:PORT" as configured (HOST a name, IPv4 or [IPv6]).
  std::string upstream;
  /// Covers name resolution and connect; passed as the endpoint's :timeout=.
  int connectTimeoutMs = 5000;
  SendProxy sendProxy = SendProxy::Off;
  /// Per direction: reading from one side pauses while more than this is
  /// unsent to the other (and while the upstream connect is pending and this
  /// much arrived already); it resumes once at most half of it is left.
  std::size_t bufferBytes = 64 * 1024;

  /// What Reactor::connect is given: "tcp:HOST:PORT:timeout=MS", for ssl: with
  /// ":caCerts=PATH:hostname=NAME" when configured (made once by readSettings).
  std::string endpoint;
};

/// Reads upstream (required), connect_timeout_ms, send_proxy, buffer_bytes and,
/// for an ssl: upstream, upstream_ca_certs and upstream_server_name.
/// Throws ConfigError ("FILE:LINE: KEY: problem") for a bad or missing value.
/// Thread: the main thread (configure).
Settings readSettings(const ConfigView& config);

}  // namespace protohost::plugins::portforward
