#pragma once
// The portforward listener's factory: reads the keys (Settings.h) and builds
// one ClientProtocol, with its Session, per accepted connection.

#include <memory>

#include "Session.h"
#include "Settings.h"
#include "protohost/Factory.h"

namespace protohost::plugins::portforward {

class PortForwardFactory : public Factory {
 public:
  /// Thread: main (configure). Throws ConfigError naming the bad key.
  void configure(const ConfigView& config) override {
    settings_ = std::make_shared<const Settings>(readSettings(config));
  }
  /// Thread: any reactor's; the settings are read-only once configured.
  std::unique_ptr<Protocol> buildProtocol() override {
    if (!settings_) return nullptr;
    return std::make_unique<ClientProtocol>(settings_);
  }

 private:
  std::shared_ptr<const Settings> settings_;
};

}  // namespace protohost::plugins::portforward
