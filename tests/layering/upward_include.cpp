// Compiled against the net layer only (tests/layering/CMakeLists.txt): the
// plugin layer sits above net, so this include must not be found.
#include "plugin/ListenerRuntime.h"
