#include "PortForwardFactory.h"
#include "protohost/Plugin.h"

PROTOHOST_EXPORT_FACTORY(portforward, protohost::plugins::portforward::PortForwardFactory)
