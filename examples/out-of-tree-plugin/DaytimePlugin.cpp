#include "DaytimeProtocol.h"

#include "protohost/Plugin.h"

PROTOHOST_EXPORT_FACTORY(daytime, daytime::DaytimeFactory)
