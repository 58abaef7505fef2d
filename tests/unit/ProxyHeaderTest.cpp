// The PROXY protocol header parser (host/src/ProxyHeader.h), rows of
// docs/reliability.md T11 (malformed v1) and T13 (v2 edge cases, split delivery).
// Every case is fed in every chunk size from 1 byte to the whole input: a
// valid header gives the same result and the same payload after it however
// it is split, and an invalid one fails on the very byte that makes it
// invalid (the spec: abort "as soon as possible"), not later.

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ChunkFeeder.h"
#include "net/ProxyHeader.h"
#include "ProxyHeaders.h"

using protohost::host::ProxyHeader;
using protohost::host::ProxyHeaderParser;
namespace v2 = protohost::testing::proxyv2;

namespace {

using Status = ProxyHeaderParser::Status;
using Family = ProxyHeader::Family;

// The outcome of feeding one input in pieces of one size.
struct FeedRun {
  Status status = Status::NeedMore;
  std::size_t decidedAfter = 0;  // input bytes handed to the parser up to and including the deciding feed()
  std::string payload;           // Done: what follows the header (rest of the deciding piece + later pieces)
  ProxyHeader header;
  std::string error;
};

FeedRun feedInPieces(std::string_view input, std::size_t chunk) {
  ProxyHeaderParser parser;
  FeedRun run;
  std::size_t offered = 0;
  for (std::string_view piece : chunkfeeder::split(input, chunk)) {
    if (run.status == Status::Done) {
      run.payload.append(piece);
      continue;
    }
    offered += piece.size();
    const ProxyHeaderParser::Result r = parser.feed(piece);
    EXPECT_EQ(r.status, parser.status());
    if (r.status == Status::NeedMore) {
      EXPECT_EQ(r.consumed, piece.size());
      continue;
    }
    run.status = r.status;
    run.decidedAfter = offered;
    if (r.status == Status::Error) break;
    EXPECT_LE(r.consumed, piece.size());
    run.payload.append(piece.substr(r.consumed));
  }
  run.header = parser.header();
  run.error = parser.error();
  // Once decided, the parser stays decided and takes nothing more.
  if (run.status != Status::NeedMore) {
    const ProxyHeaderParser::Result again = parser.feed("more");
    EXPECT_EQ(again.status, run.status);
    EXPECT_EQ(again.consumed, 0u);
  }
  return run;
}

struct Expected {
  int version;
  Family family;
  bool hasAddresses;
  std::string source = {};
  std::uint16_t sourcePort = 0;
  std::string destination = {};
  std::uint16_t destinationPort = 0;
  bool local = false;
};

// A request with a NUL and a non-ASCII byte: the payload is passed on as bytes.
const std::string kPayload("GET / HTTP/1.0\r\n\r\n\0\xff", 20);

// A valid header followed by @p payload: same header and payload for every chunk size.
void expectValid(const std::string& header, const Expected& e, const std::string& payload = kPayload) {
  const std::string input = header + payload;
  for (std::size_t chunk = 1; chunk <= input.size(); ++chunk) {
    SCOPED_TRACE("chunk size " + std::to_string(chunk));
    FeedRun run = feedInPieces(input, chunk);
    ASSERT_EQ(run.status, Status::Done) << run.error;
    EXPECT_EQ(run.payload, payload);
    // Decided by the piece holding the header's last byte.
    EXPECT_EQ(run.decidedAfter, std::min(input.size(), (header.size() + chunk - 1) / chunk * chunk));
    const ProxyHeader& h = run.header;
    EXPECT_EQ(h.version, e.version);
    EXPECT_EQ(h.family, e.family);
    EXPECT_EQ(h.local, e.local);
    EXPECT_EQ(h.hasAddresses, e.hasAddresses);
    if (e.hasAddresses) {
      EXPECT_EQ(h.source.address, e.source);
      EXPECT_EQ(h.source.port, e.sourcePort);
      EXPECT_EQ(h.destination.address, e.destination);
      EXPECT_EQ(h.destination.port, e.destinationPort);
    }
  }
}

// @p validPrefix + @p rest is invalid, and the first byte of @p rest is what
// makes it so: byte-wise it fails on exactly that byte, and in bigger pieces
// on the piece that holds it. The error text contains @p reason.
void expectInvalid(const std::string& validPrefix, const std::string& rest, const std::string& reason) {
  ASSERT_FALSE(rest.empty());
  const std::string input = validPrefix + rest;
  const std::size_t badByte = validPrefix.size() + 1;  // 1-based
  for (std::size_t chunk = 1; chunk <= input.size(); ++chunk) {
    SCOPED_TRACE("chunk size " + std::to_string(chunk));
    FeedRun run = feedInPieces(input, chunk);
    ASSERT_EQ(run.status, Status::Error) << "accepted: " << ::testing::PrintToString(input);
    EXPECT_EQ(run.decidedAfter, std::min(input.size(), (badByte + chunk - 1) / chunk * chunk))
        << run.error << " (input " << ::testing::PrintToString(input) << ")";
    EXPECT_NE(run.error.find(reason), std::string::npos) << "error: " << run.error;
  }
  // The valid prefix alone is still undecided.
  FeedRun prefixOnly = feedInPieces(validPrefix, 1);
  EXPECT_EQ(prefixOnly.status, Status::NeedMore) << prefixOnly.error;
}

const std::string kMaxV6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";

}  // namespace

// ---------------------------------------------------------------- v1 valid

TEST(ProxyHeaderV1, Tcp4WithPayload) {
  expectValid("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
              {1, Family::Inet4, true, "192.168.0.1", 56324, "192.168.0.11", 443});
}

TEST(ProxyHeaderV1, Tcp4Extremes) {
  expectValid("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
              {1, Family::Inet4, true, "255.255.255.255", 65535, "255.255.255.255", 65535});
  expectValid("PROXY TCP4 0.0.0.0 10.0.0.1 0 0\r\n", {1, Family::Inet4, true, "0.0.0.0", 0, "10.0.0.1", 0});
}

TEST(ProxyHeaderV1, Tcp6CanonicalisedAndLongest) {
  expectValid("PROXY TCP6 2001:DB8::1 2001:db8:0:0:0:0:0:2 1234 80\r\n",
              {1, Family::Inet6, true, "2001:db8::1", 1234, "2001:db8::2", 80});
  const std::string longest = "PROXY TCP6 " + kMaxV6 + " " + kMaxV6 + " 65535 65535\r\n";
  ASSERT_EQ(longest.size(), 104u);  // the spec's longest TCP6 line
  expectValid(longest, {1, Family::Inet6, true, kMaxV6, 65535, kMaxV6, 65535});
  expectValid("PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n", {1, Family::Inet6, true, "::ffff:192.0.2.1", 1, "::1", 2});
}

// T11: UNKNOWN (short form, with addresses, with trailing garbage) is accepted
// and means "use the real connection endpoints"; the rest of its line is ignored.
TEST(ProxyHeaderV1, UnknownUsesRealEndpoints) {
  const Expected unknown{1, Family::Unspecified, false};
  expectValid("PROXY UNKNOWN\r\n", unknown);
  const std::string worst = "PROXY UNKNOWN " + kMaxV6 + " " + kMaxV6 + " 65535 65535\r\n";
  ASSERT_EQ(worst.size(), 107u);  // the spec's worst case
  expectValid(worst, unknown);
  expectValid("PROXY UNKNOWN trailing garbage !@# 1.2.3.4\r\n", unknown);
}

TEST(ProxyHeaderV1, PayloadMayLookLikeAnotherHeader) {
  expectValid("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", {1, Family::Inet4, true, "1.2.3.4", 1, "5.6.7.8", 2},
              "PROXY TCP4 9.9.9.9 9.9.9.9 9 9\r\n\r\n\0\r\nQUIT\n");
}

TEST(ProxyHeaderV1, HeaderAloneWithoutPayload) {
  expectValid("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", {1, Family::Inet4, true, "1.2.3.4", 1, "5.6.7.8", 2}, "");
}

// ---------------------------------------------------------------- v1 invalid (T11)

TEST(ProxyHeaderV1, NotAProxyHeaderFailsOnTheFirstByte) {
  expectInvalid("", "hello\n", "not a PROXY protocol header");
  expectInvalid("", "GET / HTTP/1.1\r\n\r\n", "not a PROXY protocol header");
  expectInvalid("", std::string("\0\0\0\0", 4), "not a PROXY protocol header");
}

TEST(ProxyHeaderV1, PrefixIsCaseSensitiveAndExact) {
  expectInvalid("", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not a PROXY protocol header");
  expectInvalid("PROX", "y TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "expected \"PROXY \"");
  expectInvalid("PROXY", "\r\n", "expected \"PROXY \"");
  expectInvalid("PROXY", "TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "expected \"PROXY \"");
}

TEST(ProxyHeaderV1, UnknownProtocol) {
  expectInvalid("PROXY TCP", "5 1.2.3.4 5.6.7.8 1 2\r\n", "unknown protocol");
  expectInvalid("PROXY ", "tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "unknown protocol");
  expectInvalid("PROXY UNKNOWN", "X\r\n", "unknown protocol");
  expectInvalid("PROXY TCP4", "6 1.2.3.4 5.6.7.8 1 2\r\n", "unknown protocol");
  expectInvalid("PROXY ", "\r\n", "unknown protocol");
}

TEST(ProxyHeaderV1, MissingFields) {
  expectInvalid("PROXY TCP4 1.2.3.4 5.6.7.8 1", "\r\n", "missing fields");
  expectInvalid("PROXY TCP4 1.2.3.4 5.6.7.8", "\r\n", "missing fields");
  expectInvalid("PROXY TCP4", "\r\n", "missing fields");
  expectInvalid("PROXY TCP6 ::1", "\r\n", "missing fields");
}

TEST(ProxyHeaderV1, BadAddresses) {
  expectInvalid("PROXY TCP4 25", "6.1.1.1 10.0.0.1 1 2\r\n", "bad source address");
  expectInvalid("PROXY TCP4 1.2.3", " 5.6.7.8 1 2\r\n", "bad source address");
  expectInvalid("PROXY TCP4 0", "1.2.3.4 5.6.7.8 1 2\r\n", "bad source address");  // heading zero
  expectInvalid("PROXY TCP4 1.2.3.4", ".5 5.6.7.8 1 2\r\n", "bad source address");
  expectInvalid("PROXY TCP4 1.", ".3.4 5.6.7.8 1 2\r\n", "bad source address");
  expectInvalid("PROXY TCP4 ", ":1 5.6.7.8 1 2\r\n", "bad source address");  // IPv6 in a TCP4 line
  expectInvalid("PROXY TCP4 1.2.3.4 5.6.7.", "x 1 2\r\n", "bad destination address");
  expectInvalid("PROXY TCP6 1.2.3.4", " ::1 1 2\r\n", "bad source address");  // IPv4 in a TCP6 line
  expectInvalid("PROXY TCP6 ::1 2001:db8::1:", ":2 1 2\r\n", "bad destination address");  // two "::"
  expectInvalid("PROXY TCP6 ::1 ::", ":1 1 2\r\n", "bad destination address");
  expectInvalid("PROXY TCP6 ", "g::1 ::1 1 2\r\n", "bad source address");
  expectInvalid("PROXY TCP6 ::1 1:2:3:4:5:6:7", " 1 2\r\n", "bad destination address");  // 112 bits
}

TEST(ProxyHeaderV1, BadPorts) {
  expectInvalid("PROXY TCP4 1.2.3.4 5.6.7.8 7000", "0 80\r\n", "bad source port");
  expectInvalid("PROXY TCP4 1.2.3.4 5.6.7.8 6553", "6 80\r\n", "bad source port");
  expectInvalid("PROXY TCP4 1.2.3.4 5.6.7.8 1 0", "80\r\n", "bad destination port");  // heading zero
  expectInvalid("PROXY TCP4 1.2.3.4 5.6.7.8 ", "-1 2\r\n", "bad source port");
  expectInvalid("PROXY TCP4 1.2.3.4 5.6.7.8 1 9999", "9\r\n", "bad destination port");
  expectInvalid("PROXY TCP4 1.2.3.4 5.6.7.8 1 ", "\r\n", "empty destination port");
}

TEST(ProxyHeaderV1, SpacesAndLineEnds) {
  expectInvalid("PROXY TCP4 1.2.3.4 ", " 5.6.7.8 1 2\r\n", "empty destination address");
  expectInvalid("PROXY TCP4 1.2.3.4 5.6.7.8 1 2", " \r\n", "unexpected text after the destination port");
  expectInvalid("PROXY TCP4 1.2.3.4 5.6.7.8 1 2", " 3\r\n", "unexpected text after the destination port");
  expectInvalid("PROXY TCP4 1.2.3.4 5.6.7.8 1 2", "\n", "LF instead of CRLF");
  expectInvalid("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", "x\n", "CR or LF inside the line");
  expectInvalid("PROXY TCP4 1.2.3.4", std::string("\0 5.6.7.8 1 2\r\n", 15), "bad source address");
  expectInvalid("PROXY UNKNOWN", "\n", "LF instead of CRLF");
}

// T11: 108 bytes without CRLF. The 107th byte is the last a line may use; a
// line that has not ended by then fails there, even if it would end next.
TEST(ProxyHeaderV1, NoCrlfWithin107Bytes) {
  const std::string start = "PROXY UNKNOWN " + std::string(92, 'a');
  ASSERT_EQ(start.size(), 106u);
  expectInvalid(start, "aa", "no CRLF within 107 bytes");
  expectInvalid(start, "\r\n", "no CRLF within 107 bytes");
}

// A header that stops short stays undecided (the connection's deadline ends it).
TEST(ProxyHeaderV1, IncompleteStaysUndecided) {
  for (std::string partial : {"P", "PROXY ", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r",
                              "PROXY UNKNOWN whatever"}) {
    SCOPED_TRACE(partial);
    for (std::size_t chunk = 1; chunk <= partial.size(); ++chunk) EXPECT_EQ(feedInPieces(partial, chunk).status, Status::NeedMore);
  }
}

// ---------------------------------------------------------------- v2 valid (T13)

TEST(ProxyHeaderV2, ProxyTcp4) {
  expectValid(v2::header(v2::kProxy, v2::kTcp4, v2::inet4({192, 0, 2, 1}, {198, 51, 100, 7}, 49152, 443)),
              {2, Family::Inet4, true, "192.0.2.1", 49152, "198.51.100.7", 443});
}

TEST(ProxyHeaderV2, ProxyTcp6) {
  expectValid(v2::header(v2::kProxy, v2::kTcp6, v2::inet6(v2::docV6(1), v2::docV6(2), 1234, 80)),
              {2, Family::Inet6, true, "2001:db8::1", 1234, "2001:db8::2", 80});
}

TEST(ProxyHeaderV2, TlvsAreSkipped) {
  const std::string tlvs = v2::tlv(0x01, "h2") + v2::tlv(0x04, std::string(3, '\0')) + v2::tlv(0x05, "unique-id");
  expectValid(v2::header(v2::kProxy, v2::kTcp4, v2::inet4({10, 1, 2, 3}, {10, 9, 8, 7}, 1, 2) + tlvs),
              {2, Family::Inet4, true, "10.1.2.3", 1, "10.9.8.7", 2});
}

// The cap: exactly kMaxV2Payload bytes after the 16-byte header are accepted.
TEST(ProxyHeaderV2, BlockAtTheCap) {
  std::string block = v2::inet4({10, 0, 0, 1}, {10, 0, 0, 2}, 3, 4);
  block += v2::tlv(0x04, std::string(ProxyHeaderParser::kMaxV2Payload - block.size() - 3, 'z'));
  ASSERT_EQ(block.size(), ProxyHeaderParser::kMaxV2Payload);
  expectValid(v2::header(v2::kProxy, v2::kTcp4, block), {2, Family::Inet4, true, "10.0.0.1", 3, "10.0.0.2", 4});
}

// T13: LOCAL with and without an address block: real endpoints, block ignored.
TEST(ProxyHeaderV2, LocalUsesRealEndpoints) {
  const Expected local{2, Family::Unspecified, false, {}, 0, {}, 0, true};
  expectValid(v2::header(v2::kLocal, v2::kUnspec), local);
  expectValid(v2::header(v2::kLocal, v2::kTcp4, v2::inet4({1, 2, 3, 4}, {5, 6, 7, 8}, 9, 10)), local);
  expectValid(v2::header(v2::kLocal, v2::kTcp4, "short"), local);  // LOCAL: the block is not decoded
}

// AF_UNSPEC, AF_UNIX and a non-stream transport: real endpoints.
TEST(ProxyHeaderV2, FamiliesWithoutIpEndpoints) {
  expectValid(v2::header(v2::kProxy, v2::kUnspec), {2, Family::Unspecified, false});
  expectValid(v2::header(v2::kProxy, v2::kUnspec, "ignored"), {2, Family::Unspecified, false});
  expectValid(v2::header(v2::kProxy, v2::kUnixStream, v2::unixPaths("/run/a.sock", "/run/b.sock")),
              {2, Family::Unix, false});
  expectValid(v2::header(v2::kProxy, v2::kUdp4, v2::inet4({1, 2, 3, 4}, {5, 6, 7, 8}, 9, 10)), {2, Family::Inet4, false});
}

// ---------------------------------------------------------------- v2 invalid (T13)

TEST(ProxyHeaderV2, OverCapLengthRejectedOnTheLengthBytes) {
  const std::string upToLength = v2::signature() + static_cast<char>(v2::kProxy) + static_cast<char>(v2::kTcp4);
  expectInvalid(upToLength + '\xff', "\xff" + std::string(64, 'x'), "exceeds the limit of 1024");
  expectInvalid(upToLength + '\x04', "\x01" + std::string(64, 'x'), "exceeds the limit of 1024");  // 1025
}

TEST(ProxyHeaderV2, VersionMustBeTwo) {
  expectInvalid(v2::signature(), "\x11\x11" + v2::be16(12) + std::string(12, '\0'), "unsupported version 1");
  expectInvalid(v2::signature(), "\x31\x11" + v2::be16(12) + std::string(12, '\0'), "unsupported version 3");
  expectInvalid(v2::signature(), std::string("\x01\x11", 2) + v2::be16(12) + std::string(12, '\0'), "unsupported version 0");
}

TEST(ProxyHeaderV2, UnknownCommandFamilyOrTransport) {
  expectInvalid(v2::signature(), "\x22\x11" + v2::be16(12), "unknown command 2");
  expectInvalid(v2::signature() + '\x21', "\x41" + v2::be16(12), "unknown address family 4");
  expectInvalid(v2::signature() + '\x21', "\x13" + v2::be16(12), "unknown transport 3");
  expectInvalid(v2::signature() + '\x20', "\xf0" + v2::be16(0), "unknown address family 15");
}

TEST(ProxyHeaderV2, AddressBlockTooShortForItsFamily) {
  const std::string sig = v2::signature() + '\x21';
  expectInvalid(sig + static_cast<char>(v2::kTcp4) + '\0', "\x0b" + std::string(11, 'x'), "too short");
  expectInvalid(sig + static_cast<char>(v2::kTcp6) + '\0', "\x0c" + std::string(12, 'x'), "too short");
  expectInvalid(sig + static_cast<char>(v2::kUnixStream) + '\0', "\x6c" + std::string(108, 'x'), "too short");
}

TEST(ProxyHeaderV2, BadSignature) {
  expectInvalid("\r\n", "GET / HTTP/1.1\r\n", "not a PROXY protocol header");
  expectInvalid("\r\n\r\n", std::string("\x01\r\nQUIT\n\x21\x11\x00\x00", 11), "not a PROXY protocol header");
  expectInvalid(std::string("\r\n\r\n\0\r\nQUI", 10), "X\n", "not a PROXY protocol header");
}

TEST(ProxyHeaderV2, IncompleteStaysUndecided) {
  const std::string full = v2::header(v2::kProxy, v2::kTcp4, v2::inet4({1, 2, 3, 4}, {5, 6, 7, 8}, 9, 10));
  for (std::size_t n = 1; n < full.size(); ++n) {
    SCOPED_TRACE("first " + std::to_string(n) + " bytes");
    for (std::size_t chunk = 1; chunk <= n; ++chunk) EXPECT_EQ(feedInPieces(full.substr(0, n), chunk).status, Status::NeedMore);
  }
}

// T13 split delivery at the parser: a v1 and a v2 header followed by a
// request give byte-identical results in every split.
TEST(ProxyHeader, EverySplitGivesTheSameResult) {
  const std::string request = "NEXT\r\nNEXT\r\n";
  for (const std::string& header :
       {std::string("PROXY TCP4 203.0.113.9 198.51.100.1 40000 8889\r\n"),
        v2::header(v2::kProxy, v2::kTcp4, v2::inet4({203, 0, 113, 9}, {198, 51, 100, 1}, 40000, 8889) + v2::tlv(0x04, "pad"))}) {
    const FeedRun whole = feedInPieces(header + request, header.size() + request.size());
    ASSERT_EQ(whole.status, Status::Done);
    for (std::size_t chunk = 1; chunk < header.size() + request.size(); ++chunk) {
      SCOPED_TRACE("chunk size " + std::to_string(chunk));
      const FeedRun split = feedInPieces(header + request, chunk);
      ASSERT_EQ(split.status, Status::Done);
      EXPECT_EQ(split.payload, request);
      EXPECT_EQ(split.header.source.address, "203.0.113.9");
      EXPECT_EQ(split.header.source.port, whole.header.source.port);
      EXPECT_EQ(split.header.destination.address, whole.header.destination.address);
      EXPECT_EQ(split.header.destination.port, 8889);
    }
  }
}
