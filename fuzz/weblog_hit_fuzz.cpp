// Fuzzes the weblog CLF parser and XML encoding: whatever bytes a log line
// holds, a hit is either refused or a well-formed <hit .../> element that an
// XML parser (expat) accepts inside the <hits> stream.
#include <expat.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "HitFormatter.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto hit = protohost::plugins::weblog::formatLogLine(line);
  if (!hit) return 0;
  if (hit->rfind("<hit ip=\"", 0) != 0 || hit->size() < 3 || hit->compare(hit->size() - 2, 2, "/>") != 0) std::abort();
  XML_Parser parser = XML_ParserCreate("UTF-8");
  std::string doc = "<hits>" + *hit;
  bool ok = XML_Parse(parser, doc.data(), static_cast<int>(doc.size()), 0) == XML_STATUS_OK;
  XML_ParserFree(parser);
  if (!ok) std::abort();
  return 0;
}
