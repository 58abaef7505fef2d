// asio_echo: Boost.Asio's async echo written the plain way (the shape of the
// Boost documentation's async_tcp_echo_server), single-threaded: one
// io_context run by one thread, a session object per connection owning a
// 16 KiB buffer, async_read_some -> async_write -> async_read_some.
// usage: asio_echo PORT [ADDR=127.0.0.1]; SIGTERM/SIGINT exit 0.
#include <utility>  // Boost 1.74 asio/awaitable.hpp uses std::exchange without it (C++20)

#include <boost/asio.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>

using boost::asio::ip::tcp;

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket) : socket_(std::move(socket)) {}
  void start() { read(); }

 private:
  void read() {
    auto self = shared_from_this();
    socket_.async_read_some(boost::asio::buffer(data_), [this, self](boost::system::error_code ec, std::size_t n) {
      if (!ec) write(n);
    });
  }
  void write(std::size_t n) {
    auto self = shared_from_this();
    boost::asio::async_write(socket_, boost::asio::buffer(data_, n), [this, self](boost::system::error_code ec, std::size_t) {
      if (!ec) read();
    });
  }
  tcp::socket socket_;
  std::array<char, 16 * 1024> data_;
};

class Server {
 public:
  Server(boost::asio::io_context& io, const tcp::endpoint& ep) : acceptor_(io) {
    acceptor_.open(ep.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(511);
    accept();
  }

 private:
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(socket))->start();
      }
      accept();
    });
  }
  tcp::acceptor acceptor_;
};

int main(int argc, char** argv) {
  if (argc < 2) return std::fprintf(stderr, "usage: asio_echo PORT [ADDR]\n"), 64;
  try {
    boost::asio::io_context io(1);
    auto addr = boost::asio::ip::make_address(argc > 2 ? argv[2] : "127.0.0.1");
    Server server(io, tcp::endpoint(addr, static_cast<unsigned short>(std::atoi(argv[1]))));
    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code&, int) { io.stop(); });
    std::fprintf(stderr, "asio_echo listening on %s:%s\n", addr.to_string().c_str(), argv[1]);
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asio_echo: %s\n", e.what());
    return 78;
  }
  return 0;
}
