#include "net/DatagramSocket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "net/BindSocket.h"

namespace protohost::host {
namespace {

// Receive slots: up to 32 per recvmmsg, fewer for large datagrams so that one
// socket's slots stay near 1 MiB (16 x 64 KiB at the default maximum).
std::size_t slotCount(std::size_t slotSize) {
  return std::clamp<std::size_t>((std::size_t{1} << 20) / std::max<std::size_t>(slotSize, 1), 4, 32);
}

}  // namespace

Address toAddress(const DatagramPeer& peer) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (peer.storage.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(peer.storage);
    ::inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
    return Address{buf, ntohs(a.sin_port)};
  }
  if (peer.storage.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(peer.storage);
    ::inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof buf);
    return Address{buf, ntohs(a.sin6_port)};
  }
  return Address{};
}

bool toPeer(const Address& address, int family, DatagramPeer& peer) {
  peer = DatagramPeer{};
  if (family == AF_INET6) {
    auto& a = reinterpret_cast<sockaddr_in6&>(peer.storage);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(address.port);
    peer.length = sizeof a;
    return ::inet_pton(AF_INET6, address.host.c_str(), &a.sin6_addr) == 1;
  }
  auto& a = reinterpret_cast<sockaddr_in&>(peer.storage);
  a.sin_family = AF_INET;
  a.sin_port = htons(address.port);
  peer.length = sizeof a;
  return family == AF_INET && ::inet_pton(AF_INET, address.host.c_str(), &a.sin_addr) == 1;
}

DatagramSocket::DatagramSocket(std::size_t maxDatagramBytes) {
  setMaxDatagramBytes(maxDatagramBytes);
  sendBytes_.reserve(std::min<std::size_t>(kMaxQueued * slotSize_, std::size_t{1} << 20));
  queued_.reserve(kMaxQueued);
  sendMsgs_.resize(kMaxQueued);
  sendIovs_.resize(kMaxQueued);
  sendControls_.resize(kMaxQueued);
}

DatagramSocket::~DatagramSocket() { close(); }

void DatagramSocket::setMaxDatagramBytes(std::size_t maxDatagramBytes) {
  slotSize_ = std::max<std::size_t>(maxDatagramBytes, 1);
  const std::size_t n = slotCount(slotSize_);
  buffer_.reset(new char[n * slotSize_]);
  msgs_.assign(n, mmsghdr{});
  iovs_.assign(n, iovec{});
  peers_.assign(n, DatagramPeer{});
  controls_.assign(n, Control{});
  locals_.assign(n, DatagramLocal{});
}

int DatagramSocket::bind(const Endpoint& endpoint, const char*& step) {
  int err = 0;
  const int fd = bindEndpoint(endpoint, SOCK_DGRAM, err, step);
  if (fd < 0) return err;
  family_ = endpoint.isIpv6() ? AF_INET6 : AF_INET;
  fd_ = fd;
  if (endpoint.interface == "0.0.0.0" || endpoint.interface == "::") {
    int one = 1;
    const bool ok = family_ == AF_INET6 ? ::setsockopt(fd_, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) == 0
                                        : ::setsockopt(fd_, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) == 0;
    if (!ok) {
      err = errno;
      close();
      step = family_ == AF_INET6 ? "setsockopt IPV6_RECVPKTINFO" : "setsockopt IP_PKTINFO";
      return err;
    }
    pktinfo_ = true;
  }
  return 0;
}

std::uint16_t DatagramSocket::localPort() const {
  DatagramPeer local;
  local.length = sizeof local.storage;
  if (fd_ < 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&local.storage), &local.length) != 0) return 0;
  return toAddress(local).port;
}

void DatagramSocket::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  queued_.clear();
  sendBytes_.clear();
}

int DatagramSocket::receive() {
  const std::size_t n = msgs_.size();
  for (std::size_t i = 0; i < n; ++i) {
    iovs_[i] = iovec{buffer_.get() + i * slotSize_, slotSize_};
    msgs_[i].msg_hdr = msghdr{};
    msgs_[i].msg_hdr.msg_name = &peers_[i].storage;
    msgs_[i].msg_hdr.msg_namelen = sizeof peers_[i].storage;
    msgs_[i].msg_hdr.msg_iov = &iovs_[i];
    msgs_[i].msg_hdr.msg_iovlen = 1;
    if (pktinfo_) {
      msgs_[i].msg_hdr.msg_control = controls_[i].bytes;
      msgs_[i].msg_hdr.msg_controllen = sizeof controls_[i].bytes;
    }
    msgs_[i].msg_len = 0;
  }
  int got;
  do {
    got = ::recvmmsg(fd_, msgs_.data(), static_cast<unsigned>(n), MSG_DONTWAIT, nullptr);
  } while (got < 0 && errno == EINTR);
  if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
  for (int i = 0; i < got; ++i) {
    peers_[i].length = msgs_[i].msg_hdr.msg_namelen;
    DatagramLocal& local = locals_[i];
    local.set = false;
    if (!pktinfo_) continue;
    msghdr& h = msgs_[i].msg_hdr;
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c)) {
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        in_pktinfo info;
        std::memcpy(&info, CMSG_DATA(c), sizeof info);
        std::memcpy(&local.address, &info.ipi_addr, sizeof info.ipi_addr);  // the header's destination
        local.set = true;
      } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
        in6_pktinfo info;
        std::memcpy(&info, CMSG_DATA(c), sizeof info);
        local.address = info.ipi6_addr;
        local.set = true;
      }
    }
  }
  return got;
}

DatagramSocket::Received DatagramSocket::at(int i) const {
  const auto& m = msgs_[static_cast<std::size_t>(i)];
  const bool truncated = (m.msg_hdr.msg_flags & MSG_TRUNC) != 0;
  return Received{std::string_view(buffer_.get() + static_cast<std::size_t>(i) * slotSize_,
                                   std::min<std::size_t>(m.msg_len, slotSize_)),
                  &peers_[static_cast<std::size_t>(i)], truncated, &locals_[static_cast<std::size_t>(i)]};
}

void DatagramSocket::queue(std::string_view data, const DatagramPeer& peer, const DatagramLocal& local) {
  if (queued_.size() >= kMaxQueued) {
    const SendResult r = send();
    autoSent_.sent += r.sent;
    autoSent_.bytes += r.bytes;
    autoSent_.failed += r.failed;
    if (!autoSent_.firstError) autoSent_.firstError = r.firstError;
  }
  queued_.push_back(Queued{sendBytes_.size(), data.size(), peer, local});
  sendBytes_.append(data);
}

DatagramSocket::SendResult DatagramSocket::takeAutoSent() { return std::exchange(autoSent_, SendResult{}); }

DatagramSocket::SendResult DatagramSocket::send() {
  SendResult result;
  const std::size_t n = queued_.size();
  // The iovecs point into sendBytes_, which no longer grows from here on.
  for (std::size_t i = 0; i < n; ++i) {
    Queued& q = queued_[i];
    sendIovs_[i] = iovec{sendBytes_.data() + q.offset, q.length};
    sendMsgs_[i].msg_hdr = msghdr{};
    sendMsgs_[i].msg_hdr.msg_name = &q.peer.storage;
    sendMsgs_[i].msg_hdr.msg_namelen = q.peer.length;
    sendMsgs_[i].msg_hdr.msg_iov = &sendIovs_[i];
    sendMsgs_[i].msg_hdr.msg_iovlen = 1;
    if (q.local.set) {
      // Answer from the address the request was sent to (ifindex 0: routing picks the interface).
      msghdr& h = sendMsgs_[i].msg_hdr;
      h.msg_control = sendControls_[i].bytes;
      h.msg_controllen = family_ == AF_INET6 ? CMSG_SPACE(sizeof(in6_pktinfo)) : CMSG_SPACE(sizeof(in_pktinfo));
      cmsghdr* c = CMSG_FIRSTHDR(&h);
      if (family_ == AF_INET6) {
        in6_pktinfo info{};
        info.ipi6_addr = q.local.address;
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof info);
        std::memcpy(CMSG_DATA(c), &info, sizeof info);
      } else {
        in_pktinfo info{};
        std::memcpy(&info.ipi_spec_dst, &q.local.address, sizeof info.ipi_spec_dst);
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof info);
        std::memcpy(CMSG_DATA(c), &info, sizeof info);
      }
    }
  }
  std::size_t next = 0;
  while (next < n && fd_ >= 0) {
    const int done = ::sendmmsg(fd_, sendMsgs_.data() + next, static_cast<unsigned>(n - next), MSG_DONTWAIT);
    if (done > 0) {
      for (std::size_t i = next; i < next + static_cast<std::size_t>(done); ++i) result.bytes += queued_[i].length;
      result.sent += static_cast<std::size_t>(done);
      next += static_cast<std::size_t>(done);
      continue;
    }
    const int err = errno;
    if (done < 0 && err == EINTR) continue;
    if (!result.firstError) result.firstError = err;
    if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
      result.failed += n - next;  // the socket buffer is full: the rest would fail too
      break;
    }
    ++result.failed;  // this one datagram (EMSGSIZE, EACCES, ...): go on with the next
    ++next;
  }
  if (fd_ < 0) result.failed += n - next;
  queued_.clear();
  sendBytes_.clear();
  return result;
}

}  // namespace protohost::host
