// The weblog plugin: the article's weblog servers (listings 2 and 4) as a
// protohost listener. Built like an out-of-tree plugin: SDK headers only.
#include "WeblogFactory.h"

#include "protohost/Plugin.h"

PROTOHOST_EXPORT_FACTORY(weblog, protohost::plugins::weblog::WeblogFactory)
