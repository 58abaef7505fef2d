#pragma once
// An incremental parser of the PROXY protocol header (HAProxy's
// doc/proxy-protocol.txt, versions 1 and 2) that a load balancer sends before
// the client's first byte. Pure: no sockets, no Poco, no clock; the caller
// owns the timeout. Bytes may arrive split anywhere, one at a time included.
//
// Strict, as the spec asks ("any sequence which does not exactly match the
// protocol must be discarded"): v1 is "PROXY " (case-sensitive), TCP4, TCP6 or
// UNKNOWN, canonical addresses and ports without heading zeroes, single
// spaces, at most 107 bytes ending in CRLF; v2 is the 12-byte signature,
// version 2, command LOCAL or PROXY, a known family and transport, an address
// block at least as long as the family needs and at most kMaxV2Payload bytes.
// A prefix that cannot become a valid header is an error at once (the spec:
// "abort the connection as soon as possible"), so "hello\n" fails on its 'h'.
//
// Threading: a parser is used by one thread at a time; no shared state.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace protohost::host {

/// What a complete header says about the connection.
struct ProxyHeader {
  enum class Family {
    Unspecified,  ///< v1 UNKNOWN, v2 LOCAL (whatever family it names), v2 AF_UNSPEC
    Inet4,        ///< IPv4: addresses set for TCP (v1 TCP4, v2 STREAM), not for v2 UNSPEC/DGRAM
    Inet6,        ///< IPv6: likewise
    Unix,         ///< v2 AF_UNIX (no IP endpoints to report)
  };
  struct Endpoint {
    std::string address;  ///< text form ("192.0.2.1", "2001:db8::1")
    std::uint16_t port = 0;
  };

  int version = 0;  ///< 1 or 2
  bool local = false;  ///< v2 LOCAL command (a health check by the proxy itself)
  Family family = Family::Unspecified;
  /// False: the connection must be described by its real socket endpoints
  /// (v1 UNKNOWN, v2 LOCAL, AF_UNSPEC, AF_UNIX, a non-stream transport).
  bool hasAddresses = false;
  Endpoint source;
  Endpoint destination;
};

class ProxyHeaderParser {
 public:
  enum class Status { NeedMore, Done, Error };

  /// Longest v1 line, CRLF included (the spec's worst case).
  static constexpr std::size_t kMaxV1Line = 107;
  /// Longest v2 address block (addresses + TLVs) accepted after the 16-byte
  /// header: an AF_UNIX block (216 bytes) plus room for TLVs. 0xFFFF is refused.
  static constexpr std::size_t kMaxV2Payload = 1024;

  struct Result {
    Status status = Status::NeedMore;
    /// Done: how many bytes of the input passed to this feed() belong to the
    /// header; the rest is the client's payload. NeedMore: all of them.
    std::size_t consumed = 0;
  };

  /// Takes the next bytes of the connection. After Done or Error further
  /// calls return the same status and consume nothing.
  Result feed(std::string_view bytes);

  Status status() const { return status_; }
  /// Done: the parsed header.
  const ProxyHeader& header() const { return header_; }
  /// Error: why, e.g. "v1: bad source address \"300.1.1.1\"".
  const std::string& error() const { return error_; }
  /// Total header bytes seen so far (all of the header once Done).
  std::size_t bytesSeen() const { return buf_.size(); }

 private:
  enum class Mode { Detect, V1, V2 };
  Status step();  // examines buf_ after one more byte (or block) was appended
  Status checkV1(bool complete);
  Status checkV2();
  Status fail(std::string why);

  Mode mode_ = Mode::Detect;
  Status status_ = Status::NeedMore;
  std::string buf_;  // header bytes so far (at most 16 + kMaxV2Payload)
  ProxyHeader header_;
  std::string error_;
};

}  // namespace protohost::host
