// Compiled against the net layer only: the reactor layer sits below net, so
// this include is found (the control for upward_include.cpp).
#include "reactor/EventLoop.h"
