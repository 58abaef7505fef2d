#include "HitFormatter.h"

#include "XmlEscape.h"

namespace protohost::plugins::weblog {

std::string formatHit(const LogFields& f) {
  std::string out;
  out.reserve(96 + f.ip.size() + f.timestamp.size() + f.request.size() + f.status.size() +
              f.bytes.size() + f.referrer.size() + f.agent.size());
  auto attribute = [&out](std::string_view name, std::string_view value) {
    out += ' ';
    out += name;
    out += "=\"";
    appendXmlAttributeValue(out, value);
    out += '"';
  };
  out += "<hit";
  attribute("ip", f.ip);
  attribute("timestamp", f.timestamp);
  attribute("request", f.request);
  attribute("status", f.status);
  attribute("bytes", f.bytes);
  attribute("referrer", f.referrer);
  attribute("agent", f.agent);
  out += "/>";
  return out;
}

std::optional<std::string> formatLogLine(std::string_view line) {
  auto fields = parseLogLine(line);
  if (!fields) return std::nullopt;
  return formatHit(*fields);
}

}  // namespace protohost::plugins::weblog
