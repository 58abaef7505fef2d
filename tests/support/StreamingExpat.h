#pragma once
// An expat parser for a client that parses a weblog stream as it arrives.
// Expat 2.6.0 defers reparsing a token that came in pieces until more data
// follows (against quadratic reparsing, CVE-2023-52425): an element fed byte by
// byte, or split across two reads, is reported only once the next bytes come.
// Debian's security updates backport that to 2.5.0 (2.5.0-1+deb12u2 on)
// without changing the version macros, so tests/CMakeLists.txt looks for the
// function itself and defines PROTOHOST_HAVE_XML_REPARSE_DEFERRAL.

#include <expat.h>

#include <stdexcept>

namespace protohost::testsupport {

/// A UTF-8 parser that reports every element as soon as its last byte was fed.
inline XML_Parser createStreamingParser() {
  XML_Parser parser = XML_ParserCreate("UTF-8");
  if (!parser) throw std::runtime_error("XML_ParserCreate failed");
#if defined(PROTOHOST_HAVE_XML_REPARSE_DEFERRAL)
  XML_SetReparseDeferralEnabled(parser, XML_FALSE);
#endif
  return parser;
}

}  // namespace protohost::testsupport
