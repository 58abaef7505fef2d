#include "EchoProtocol.h"

#include "protohost/Plugin.h"

PROTOHOST_EXPORT_PROTOCOL(echo, protohost::plugins::echo::EchoProtocol)
