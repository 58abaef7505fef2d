#pragma once
// Fields -> one <hit .../> element, the weblog wire format of the field notes:
//   <hit ip=".." timestamp=".." request=".." status=".." bytes=".." referrer=".." agent=".."/>
// (attributes in this order, no whitespace around the element).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "ClfParser.h"

namespace protohost::plugins::weblog {

/// What the server writes first on every connection: the root of an endless document.
inline constexpr std::string_view kStreamStart = "<hits>";
/// The poll-mode answer when a client has no new hits.
inline constexpr std::string_view kNoHits = "<none/>";

/// The element for @p fields, every value escaped with appendXmlAttributeValue.
std::string formatHit(const LogFields& fields);

/// parseLogLine + formatHit; nullopt when the line does not parse.
std::optional<std::string> formatLogLine(std::string_view line);

/// Upper bound of formatHit's output for a line of @p lineBytes bytes
/// (escaping grows a byte to at most 6).
constexpr std::size_t maxHitBytes(std::size_t lineBytes) { return 6 * lineBytes + 128; }

}  // namespace protohost::plugins::weblog
