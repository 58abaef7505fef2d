#!/usr/bin/python3
"""Twisted's UDP echo (the Twisted documentation's DatagramProtocol Echo) on the epoll reactor.

usage: twisted_udp_echo.py PORT [ADDR=127.0.0.1]   (Debian's python3-twisted; SIGTERM exits 0)
maxPacketSize 65535: Twisted's default of 8192 would truncate larger datagrams.
"""
import sys

from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import protocol, reactor  # noqa: E402


class Echo(protocol.DatagramProtocol):
    noisy = False

    def datagramReceived(self, data, addr):
        self.transport.write(data, addr)


def main():
    port = int(sys.argv[1])
    addr = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    reactor.listenUDP(port, Echo(), interface=addr, maxPacketSize=65535)
    reactor.run()


if __name__ == "__main__":
    main()
