#include "LookupProtocol.h"
#include "protohost/Plugin.h"

PROTOHOST_EXPORT_FACTORY(lookup, lookup::LookupFactory)
