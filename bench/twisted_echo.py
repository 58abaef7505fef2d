#!/usr/bin/python3
"""Twisted's echo (the Twisted documentation's Echo protocol) on the epoll reactor.

usage: twisted_echo.py PORT [ADDR=127.0.0.1]   (Debian's python3-twisted; SIGTERM exits 0)
"""
import sys

from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import protocol, reactor  # noqa: E402


class Echo(protocol.Protocol):
    def connectionMade(self):
        self.transport.setTcpNoDelay(True)  # like the other servers in the kit

    def dataReceived(self, data):
        self.transport.write(data)


class EchoFactory(protocol.Factory):
    protocol = Echo
    noisy = False


def main():
    port = int(sys.argv[1])
    addr = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    reactor.listenTCP(port, EchoFactory(), backlog=511, interface=addr)
    sys.stderr.write("twisted_echo listening on %s:%d\n" % (addr, port))
    reactor.run()


if __name__ == "__main__":
    main()
