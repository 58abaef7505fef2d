#pragma once
// Arbitrary bytes -> text that is safe inside a double-quoted XML 1.0
// attribute value and is valid UTF-8, whatever the input holds.

#include <string>
#include <string_view>

namespace protohost::plugins::weblog {

/// Appends @p raw to @p out as the content of a "..." attribute value:
/// - & < > " become &amp; &lt; &gt; &quot; (' is left as is: values are double-quoted);
/// - \t \n \r become &#9; &#10; &#13; (a parser would normalise them to spaces otherwise);
/// - other C0 control characters (0x00-0x1F) and U+FFFE / U+FFFF, which XML 1.0
///   forbids, are dropped;
/// - each ill-formed UTF-8 sequence (stray continuation byte, truncated sequence,
///   overlong form, UTF-16 surrogate, above U+10FFFF) becomes one U+FFFD, per
///   the "maximal subpart" practice of Unicode (chapter 3);
/// - everything else, valid UTF-8, is copied unchanged.
/// Output is at most 6 bytes per input byte.
void appendXmlAttributeValue(std::string& out, std::string_view raw);

/// Convenience: the escaped form of @p raw.
std::string escapeXmlAttributeValue(std::string_view raw);

}  // namespace protohost::plugins::weblog
