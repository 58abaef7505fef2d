#include "EchoFactory.h"

#include "protohost/Plugin.h"

PROTOHOST_EXPORT_FACTORY(echo, protohost::plugins::echo::EchoFactory)
