// The fibonacci plugin: one shared, durable Fibonacci sequence (the article's
// listing 5, fib_server.py, made exact, line-based and crash-safe).
#include "FibonacciFactory.h"
#include "protohost/Plugin.h"

PROTOHOST_EXPORT_FACTORY(fibonacci, protohost::plugins::fibonacci::FibonacciFactory)
