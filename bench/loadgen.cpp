// loadgen: a small epoll load generator for protohost's benchmark kit.
//
// Standard library + POSIX, and OpenSSL for --tls. Single-threaded by default (--threads N splits
// the connections over N epoll loops). Every run is bounded in time
// (--duration, plus bounded warm-up, connect and drain phases) and optionally
// in count (--max-msgs); it stops by itself and prints one JSON line on stdout.
//
// Modes
//   echo   N connections, each with --depth messages of --size bytes in flight
//          (ping-pong when depth = 1). Every echoed byte is compared with what
//          was sent (a per-connection pseudo-random stream), so reordering,
//          loss, duplication and corruption are all counted as errors.
//   line   like echo, but sends --line "\n" requests and expects exactly one
//          "\n"- or "\r\n"-terminated reply line per request (fibonacci).
//          --expect echo: the reply is the request line; number: a decimal
//          number, strictly increasing on each connection; any: any line.
//          --line-bytes N sends lines of N digits instead of --line (an echo
//          of lines as long as fibonacci's answers: the like-for-like row).
//   churn  --conns slots, each repeatedly: connect, send one --size message,
//          read its echo, close. Reports connections/s (as msgs/s) and the
//          connect-to-reply latency. Source addresses rotate over
//          127.0.0.1..127.0.0.K (--src-addrs) so TIME_WAIT never exhausts the
//          ephemeral ports.
//   subscribe  weblog push latency: opens --conns subscribers, waits for each
//          one's "<hits>" greeting, then appends --lines Combined Log Format
//          lines (one every --interval-ms) to --log-file, each with a unique
//          request path, and measures from the append to the moment each
//          subscriber has read that line's <hit .../> element. Every
//          subscriber must receive every line exactly once, in order.
//   idle   opens --conns connections, holds them for --duration seconds,
//          then verifies every one with one echo round-trip. With --server-pid
//          it reports the server's RSS per connection (VmRSS before and after)
//          and its CPU use and wake-ups while the connections were idle.
//
// TLS (--tls): every connection is a TLS client (OpenSSL, non-blocking, in the same
// epoll loop): the handshake (a full one: no session is ever resumed) follows the
// TCP connect and counts as part of the connect (echo, line, idle) or of the
// message (churn: a handshake per connection, so msgs/s = handshakes/s). The bytes
// compared are the plaintext; a connection that closes sends one close_notify.
// SNI --tls-sni (default localhost); the server certificate is verified (chain and
// name) only with --tls-ca FILE. The JSON line adds tls_version and tls_cipher.
//
// Latency: from the moment a message is handed to send() to the moment its
// last byte is read back, recorded in a log-linear histogram (64 sub-buckets
// per power of two: < 1.6% error), reported as p50/p90/p99/p99.9/max.
// Only messages completed inside the measurement window (after --warmup)
// count for msgs/s, MB/s and latency. MB/s = echoed payload bytes received
// per second, 1 MB = 10^6 bytes, one direction.
//
// Exit status: 0 ok, 1 the run had errors, 2 bad usage or setup failure.

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

std::atomic<bool> gInterrupted{false};

int64_t nowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "loadgen: %s\n", msg.c_str());
  std::exit(2);
}

// ---------------------------------------------------------------- options

enum class Mode { Echo, Line, Churn, Idle, Subscribe };
enum class Expect { Echo, Number, Any };

struct Options {
  std::string host = "127.0.0.1";
  int port = 7007;
  Mode mode = Mode::Echo;
  std::string modeName = "echo";
  int conns = 1;
  std::size_t size = 64;
  int depth = 1;
  double duration = 2.0;
  double warmup = 0.2;
  double connectTimeout = 20.0;
  double drainTimeout = 5.0;
  std::uint64_t maxMsgs = 0;  // 0: bounded by duration only
  std::string line = "NEXT";
  std::size_t lineBytes = 0;  // > 0: the request line is this many digits (replaces --line)
  Expect expect = Expect::Echo;
  int threads = 1;
  int srcAddrs = -1;  // -1: 32 when the target is 127.x, else 0
  int connectBatch = 128;  // outstanding connects (stay below listen backlogs)
  int serverPid = 0;
  std::vector<int> extraPids;  // --server-pid A,B,C: B, C... (a proxy's workers): CPU added to A's
  std::string label;
  std::string logFile;      // subscribe
  int lines = 100;          // subscribe
  double intervalMs = 20;   // subscribe
  bool tls = false;         // --tls: TLS client connections
  std::string tlsSni = "localhost";
  std::string tlsCa;        // --tls-ca: verify the server's chain and name against it
};

void usage() {
  std::fprintf(stderr,
               "usage: loadgen [--host 127.0.0.1] [--port 7007] [--mode echo|line|churn|idle]\n"
               "               [--conns N] [--size BYTES] [--depth N] [--duration S] [--warmup S]\n"
               "               [--max-msgs N] [--line TEXT | --line-bytes N] [--expect echo|number|any]\n"
               "               [--threads N] [--src-addrs K] [--connect-batch N]\n"
               "               [--log-file PATH --lines N --interval-ms MS]   (mode subscribe)\n"
               "               [--connect-timeout S] [--drain-timeout S] [--server-pid PID[,PID...]] [--label TEXT]\n"
               "               [--tls [--tls-sni NAME] [--tls-ca CA.pem]]\n");
}

Options parseArgs(int argc, char** argv) {
  Options o;
  auto need = [&](int& i) -> std::string {
    if (i + 1 >= argc) {
      usage();
      die(std::string("missing value for ") + argv[i]);
    }
    return argv[++i];
  };
  auto num = [](const std::string& s, const char* what) -> double {
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (end == s.c_str() || *end || !std::isfinite(v) || v < 0) die(std::string("bad ") + what + ": " + s);
    return v;
  };
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--host") o.host = need(i);
    else if (a == "--port") o.port = static_cast<int>(num(need(i), "port"));
    else if (a == "--mode") {
      o.modeName = need(i);
      if (o.modeName == "echo") o.mode = Mode::Echo;
      else if (o.modeName == "line") o.mode = Mode::Line;
      else if (o.modeName == "churn") o.mode = Mode::Churn;
      else if (o.modeName == "idle") o.mode = Mode::Idle;
      else if (o.modeName == "subscribe") o.mode = Mode::Subscribe;
      else die("bad mode: " + o.modeName);
    } else if (a == "--conns") o.conns = static_cast<int>(num(need(i), "conns"));
    else if (a == "--size") o.size = static_cast<std::size_t>(num(need(i), "size"));
    else if (a == "--depth") o.depth = static_cast<int>(num(need(i), "depth"));
    else if (a == "--duration") o.duration = num(need(i), "duration");
    else if (a == "--warmup") o.warmup = num(need(i), "warmup");
    else if (a == "--connect-timeout") o.connectTimeout = num(need(i), "connect-timeout");
    else if (a == "--drain-timeout") o.drainTimeout = num(need(i), "drain-timeout");
    else if (a == "--max-msgs") o.maxMsgs = static_cast<std::uint64_t>(num(need(i), "max-msgs"));
    else if (a == "--line") o.line = need(i);
    else if (a == "--line-bytes") o.lineBytes = static_cast<std::size_t>(num(need(i), "line-bytes"));
    else if (a == "--expect") {
      std::string e = need(i);
      if (e == "echo") o.expect = Expect::Echo;
      else if (e == "number") o.expect = Expect::Number;
      else if (e == "any") o.expect = Expect::Any;
      else die("bad --expect: " + e);
    } else if (a == "--threads") o.threads = static_cast<int>(num(need(i), "threads"));
    else if (a == "--src-addrs") o.srcAddrs = static_cast<int>(num(need(i), "src-addrs"));
    else if (a == "--connect-batch") o.connectBatch = static_cast<int>(num(need(i), "connect-batch"));
    else if (a == "--server-pid") {
      // PID[,PID...]: the first is "the server" (RSS, fds, idle wake-ups); the CPU time of
      // all of them is summed (nginx's master and workers, a proxy and its helpers)
      std::string list = need(i), item;
      std::istringstream in(list);
      for (bool first = true; std::getline(in, item, ','); first = false) {
        int pid = static_cast<int>(num(item, "server-pid"));
        if (first) o.serverPid = pid;
        else o.extraPids.push_back(pid);
      }
    }
    else if (a == "--label") o.label = need(i);
    else if (a == "--log-file") o.logFile = need(i);
    else if (a == "--lines") o.lines = static_cast<int>(num(need(i), "lines"));
    else if (a == "--interval-ms") o.intervalMs = num(need(i), "interval-ms");
    else if (a == "--tls") o.tls = true;
    else if (a == "--tls-sni") o.tlsSni = need(i);
    else if (a == "--tls-ca") o.tlsCa = need(i);
    else if (a == "-h" || a == "--help") {
      usage();
      std::exit(0);
    } else {
      usage();
      die("unknown argument: " + a);
    }
  }
  if (o.conns < 1 || o.conns > 1000000) die("--conns must be 1..1000000");
  if (o.depth < 1 || o.depth > 4096) die("--depth must be 1..4096");
  if (o.size < 1 || o.size > (64u << 20)) die("--size must be 1..64 MiB");
  if (o.threads < 1 || o.threads > 256) die("--threads must be 1..256");
  if (o.connectBatch < 1) o.connectBatch = 1;
  // Hard bounds: no run can last more than ~15 minutes whatever is asked.
  o.duration = std::min(o.duration, 600.0);
  o.warmup = std::min(o.warmup, 60.0);
  o.connectTimeout = std::min(o.connectTimeout, 120.0);
  o.drainTimeout = std::min(o.drainTimeout, 60.0);
  if (o.lineBytes > 0) {
    if (o.lineBytes > (1u << 20)) die("--line-bytes must be 1..1 MiB");
    o.line.resize(o.lineBytes);
    for (std::size_t i = 0; i < o.lineBytes; ++i) o.line[i] = static_cast<char>('1' + (i * 7) % 9);  // digits, no '0'
  }
  if (o.line.find('\n') != std::string::npos) die("--line must not contain a newline");
  if (o.mode == Mode::Line) o.size = o.line.size() + 1;
  if (o.mode == Mode::Churn || o.mode == Mode::Idle || o.mode == Mode::Subscribe) o.depth = 1;
  if (o.mode == Mode::Idle || o.mode == Mode::Subscribe) o.threads = 1;
  if (o.mode == Mode::Subscribe) {
    if (o.logFile.empty()) die("--mode subscribe needs --log-file (the access log the weblog listener follows)");
    if (o.lines < 1 || o.lines > 1000000) die("--lines must be 1..1000000");
    o.intervalMs = std::min(o.intervalMs, 10000.0);
  }
  if (o.threads > o.conns) o.threads = o.conns;
  if (o.srcAddrs < 0) o.srcAddrs = o.host.rfind("127.", 0) == 0 ? 32 : 0;
  if (o.srcAddrs > 250) o.srcAddrs = 250;
  return o;
}

// ---------------------------------------------------------------- histogram

// Log-linear: values below 128 ns exact, above that 64 sub-buckets per power of two.
class Histogram {
 public:
  static constexpr int kSubBits = 6;
  static constexpr std::uint64_t kSub = 1u << kSubBits;  // 64
  static constexpr std::size_t kBuckets = 2 * kSub + (63 - kSubBits) * kSub;

  Histogram() : counts_(kBuckets, 0) {}

  static std::size_t index(std::uint64_t v) {
    if (v < 2 * kSub) return static_cast<std::size_t>(v);
    int e = 63 - __builtin_clzll(v);  // >= kSubBits + 1
    std::uint64_t mant = v >> (e - kSubBits);  // [64, 128)
    return static_cast<std::size_t>(2 * kSub + (e - kSubBits - 1) * kSub + (mant - kSub));
  }
  static std::uint64_t midpoint(std::size_t idx) {
    if (idx < 2 * kSub) return idx;
    std::size_t k = idx - 2 * kSub;
    int e = static_cast<int>(k / kSub) + kSubBits + 1;
    std::uint64_t mant = kSub + k % kSub;
    std::uint64_t lo = mant << (e - kSubBits);
    std::uint64_t width = std::uint64_t{1} << (e - kSubBits);
    return lo + width / 2;
  }

  void record(std::int64_t ns) {
    std::uint64_t v = ns < 0 ? 0 : static_cast<std::uint64_t>(ns);
    ++counts_[index(v)];
    ++total_;
    sum_ += static_cast<double>(v);
    if (v > max_) max_ = v;
  }
  void merge(const Histogram& h) {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += h.counts_[i];
    total_ += h.total_;
    sum_ += h.sum_;
    max_ = std::max(max_, h.max_);
  }
  std::uint64_t count() const { return total_; }
  double mean() const { return total_ ? sum_ / static_cast<double>(total_) : 0; }
  std::uint64_t max() const { return max_; }
  std::uint64_t percentile(double p) const {
    if (!total_) return 0;
    std::uint64_t rank = static_cast<std::uint64_t>(std::ceil(p * static_cast<double>(total_)));
    if (rank < 1) rank = 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(midpoint(i), max_);
    }
    return max_;
  }

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  double sum_ = 0;
  std::uint64_t max_ = 0;
};

// ---------------------------------------------------------------- /proc helpers

struct ProcSample {
  bool ok = false;
  double cpuSeconds = 0;     // utime + stime
  double userSeconds = 0;    // utime
  long rssKb = 0, hwmKb = 0;
  long ctxSwitches = 0;      // voluntary + involuntary, summed over threads
  long fds = 0;
};

long statusField(const std::string& path, const char* key) {
  std::ifstream f(path);
  std::string line;
  std::size_t klen = std::strlen(key);
  while (std::getline(f, line))
    if (line.compare(0, klen, key) == 0) return std::strtol(line.c_str() + klen, nullptr, 10);
  return -1;
}

double procCpuSeconds(int pid, double* user = nullptr) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto p = s.rfind(')');
  if (p == std::string::npos) return -1;
  std::istringstream in(s.substr(p + 2));
  std::string field;
  // fields after ')' start at 3 (state); utime is 14, stime 15
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::strtod(field.c_str(), nullptr);
    if (i == 15) stime = std::strtod(field.c_str(), nullptr);
  }
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  if (user) *user = utime / tick;
  return (utime + stime) / tick;
}

long countDir(const std::string& path) {
  DIR* d = opendir(path.c_str());
  if (!d) return -1;
  long n = 0;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n;
}

ProcSample sampleProc(int pid, bool withFds = false) {
  ProcSample s;
  if (pid <= 0) return s;
  std::string base = "/proc/" + std::to_string(pid);
  s.cpuSeconds = procCpuSeconds(pid, &s.userSeconds);
  if (s.cpuSeconds < 0) return s;
  s.rssKb = statusField(base + "/status", "VmRSS:");
  s.hwmKb = statusField(base + "/status", "VmHWM:");
  if (DIR* d = opendir((base + "/task").c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::string st = base + "/task/" + e->d_name + "/status";
      long v = statusField(st, "voluntary_ctxt_switches:");
      long nv = statusField(st, "nonvoluntary_ctxt_switches:");
      if (v > 0) s.ctxSwitches += v;
      if (nv > 0) s.ctxSwitches += nv;
    }
    closedir(d);
  }
  if (withFds) s.fds = countDir(base + "/fd");
  s.ok = true;
  return s;
}

// The server's sample with the CPU time of the other --server-pid processes added.
ProcSample sampleServer(int pid, const std::vector<int>& extra, bool withFds = false) {
  ProcSample s = sampleProc(pid, withFds);
  for (int e : extra) {
    double user = 0, cpu = procCpuSeconds(e, &user);
    if (cpu < 0) continue;  // a worker gone: its time is lost, the others still count
    s.cpuSeconds += cpu;
    s.userSeconds += user;
  }
  return s;
}

// System-wide TcpExt:ListenOverflows (SYNs dropped because an accept queue was full:
// the client retries after 1 s). Shared by everything on the machine.
long listenOverflows() {
  std::ifstream f("/proc/net/netstat");
  std::string names, values;
  while (std::getline(f, names) && std::getline(f, values)) {
    if (names.rfind("TcpExt:", 0) != 0) continue;
    std::istringstream n(names), v(values);
    std::string key, val;
    while (n >> key && v >> val)
      if (key == "ListenOverflows") return std::strtol(val.c_str(), nullptr, 10);
  }
  return -1;
}

// Busy time of all CPUs (user+nice+system+irq+softirq+steal), in seconds, from /proc/stat.
double machineBusySeconds() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  double v[8] = {};
  if (!(f >> cpu) || cpu != "cpu") return -1;
  for (double& x : v) f >> x;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / tick;  // not idle (3) nor iowait (4)
}

double selfCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

void raiseFdLimit(std::size_t need) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
    rlimit bigger = rl;
    bigger.rlim_max = need;
    bigger.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &bigger) == 0) return;  // root may raise the hard limit
  }
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
    std::fprintf(stderr, "loadgen: warning: RLIMIT_NOFILE is %llu, %zu descriptors wanted\n",
                 static_cast<unsigned long long>(rl.rlim_cur), need);
}

// ---------------------------------------------------------------- errors

enum Err { EConnect, EReset, EEof, ECorrupt, EExcess, ETimeout, EReply, EOrder, EUnsolicited, ESocket, ETls, kErrKinds };
const char* const kErrNames[kErrKinds] = {"connect", "reset", "eof", "corrupt", "excess", "timeout",
                                          "bad_reply", "order", "unsolicited", "socket", "tls"};

// OpenSSL's error queue as one line (and emptied).
std::string takeTlsErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char b[256];
    ERR_error_string_n(e, b, sizeof b);
    out += out.empty() ? "" : "; ";
    out += b;
  }
  return out.empty() ? "no OpenSSL error" : out;
}

// ---------------------------------------------------------------- shared run state

// Pattern a connection's byte stream is drawn from: byte k of connection c is
// pattern[(base_c + k) % kPeriod]. kPeriod is prime, so it divides no message
// size and any shift or reorder shows. The buffer is longer than the period
// so that any in-flight window is one contiguous slice (no copy to send).
constexpr std::size_t kPeriod = 65521;

struct Shared {
  Options opt;
  std::vector<char> pattern;  // kPeriod + max in-flight bytes
  std::string lineBuf;        // the request line repeated depth + 1 times
  sockaddr_in target{};
  SSL_CTX* tls = nullptr;  // --tls: the client context (shared by the workers)
  std::atomic<std::int64_t> budget{0};  // messages left to issue (when --max-msgs)
  // set once every worker has connected; read by all workers and the sampler
  std::atomic<std::int64_t> tStart{0}, tWarm{0}, tEnd{0};
};

struct Conn {
  int fd = -1;
  std::uint32_t id = 0;
  std::size_t base = 0;
  std::uint64_t sendOff = 0, queuedEnd = 0, recvOff = 0;
  std::uint64_t issued = 0, done = 0;
  std::vector<std::int64_t> ts;  // issue time of message i at ts[i % depth]
  std::string partial;           // line mode: an incomplete reply line
  std::string lastNumber;        // line mode, --expect number
  std::int64_t startNs = 0;      // churn: when the connect began
  SSL* ssl = nullptr;            // --tls
  bool connecting = false;       // TCP connect, and with --tls the handshake after it
  bool handshaking = false;      // --tls: connected, handshake under way
  bool wantOut = false;
  bool open = false;
};

class Worker {
 public:
  Worker(Shared& sh, std::vector<std::uint32_t> ids) : sh_(sh), o_(sh.opt) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) die(std::string("epoll_create1: ") + std::strerror(errno));
    conns_.resize(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      conns_[i].id = ids[i];
      conns_[i].base = (static_cast<std::size_t>(ids[i]) * 7919u + 17u) % kPeriod;
      conns_[i].ts.assign(static_cast<std::size_t>(o_.depth), 0);
    }
    buf_.resize(std::max<std::size_t>(256 * 1024, std::min<std::size_t>(o_.size * o_.depth, 4u << 20)));
  }
  ~Worker() {
    closeAll();
    if (ep_ >= 0) ::close(ep_);
  }

  // ---- phases

  /// Opens every connection (echo, line, idle). Returns how many are open.
  std::size_t connectAll(std::int64_t deadline) {
    std::size_t next = 0, inFlight = 0, opened = 0;
    std::vector<epoll_event> evs(512);
    while ((next < conns_.size() || inFlight > 0) && !gInterrupted) {
      while (next < conns_.size() && inFlight < static_cast<std::size_t>(o_.connectBatch)) {
        if (startConnect(conns_[next], nowNs())) ++inFlight;
        ++next;
      }
      std::int64_t now = nowNs();
      if (now >= deadline) break;
      int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), msUntil(deadline, now));
      if (n < 0 && errno != EINTR) die(std::string("epoll_wait: ") + std::strerror(errno));
      for (int i = 0; i < n; ++i) {
        Conn& c = conns_[evs[i].data.u32];
        if (!c.connecting) continue;
        const int r = advanceConnect(c);
        if (r == 0) continue;  // TLS handshake under way
        --inFlight;
        if (r > 0) {
          ++opened;
          setInterest(c, EPOLLIN);
        }
      }
    }
    for (Conn& c : conns_)
      if (c.connecting) {  // timed out
        ++errors_[EConnect];
        kill(c);
      }
    return opened;
  }

  /// echo / line: the timed run, then the drain.
  void runTraffic() {
    running_ = true;
    std::int64_t now = nowNs();
    for (Conn& c : conns_) {
      if (!c.open) continue;
      for (int d = 0; d < o_.depth; ++d)
        if (!issue(c, now)) break;
      flush(c);
    }
    loop([&](std::int64_t t) { return t >= sh_.tEnd || (budgetOut_ && allDone()); });
    running_ = false;
    drain();
  }

  /// churn: slots reconnect until the end, then drain.
  void runChurn() {
    running_ = true;
    std::int64_t now = nowNs();
    for (Conn& c : conns_) startChurn(c, now);
    loop([&](std::int64_t t) { return t >= sh_.tEnd || (budgetOut_ && allDone()); });
    running_ = false;
    drain();
  }

  /// subscribe: waits (bounded) until every open connection got the "<hits>" greeting.
  std::size_t awaitGreetings(std::int64_t deadline) {
    subscribing_ = true;
    std::vector<epoll_event> evs(1024);
    auto greeted = [&] {
      std::size_t g = 0;
      for (const Conn& c : conns_) g += (c.fd >= 0 && c.issued) ? 1 : 0;
      return g;
    };
    while (!gInterrupted && nowNs() < deadline && greeted() < openCount()) {
      int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), msUntil(deadline, nowNs()));
      for (int i = 0; i < n; ++i) handle(conns_[evs[i].data.u32], evs[i].events);
    }
    std::size_t g = greeted();
    for (Conn& c : conns_)
      if (c.fd >= 0 && !c.issued) {
        ++errors_[EReply];
        if (firstError_.empty()) firstError_ = "no <hits> greeting";
        kill(c);
      }
    return g;
  }

  /// subscribe: appends the lines, paced, while reading the subscribers; then drains.
  void runSubscribe(int logFd, const std::string& marker) {
    appendTimes_.assign(static_cast<std::size_t>(o_.lines), 0);
    marker_ = marker;
    std::vector<epoll_event> evs(1024);
    const std::int64_t step = static_cast<std::int64_t>(o_.intervalMs * 1e6);
    std::int64_t next = nowNs();
    for (int line = 0; line < o_.lines && !gInterrupted;) {
      std::int64_t now = nowNs();
      if (now >= next) {
        char ts[64];
        std::time_t t = std::time(nullptr);
        std::tm tmv{};
        gmtime_r(&t, &tmv);
        std::strftime(ts, sizeof ts, "%d/%b/%Y:%H:%M:%S +0000", &tmv);
        std::string text = "127.0.0.1 - - [" + std::string(ts) + "] \"GET " + marker + std::to_string(line) +
                           " HTTP/1.1\" 200 512 \"-\" \"protohost-loadgen\"\n";
        appendTimes_[static_cast<std::size_t>(line)] = nowNs();
        if (::write(logFd, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
          die(std::string("append to --log-file: ") + std::strerror(errno));
        ++line;
        next += step;
        continue;
      }
      int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), msUntil(next, now));
      for (int i = 0; i < n; ++i) handle(conns_[evs[i].data.u32], evs[i].events);
    }
    appended_ = true;
    std::int64_t deadline = nowNs() + static_cast<std::int64_t>(o_.drainTimeout * 1e9);
    auto allIn = [&] {
      for (const Conn& c : conns_)
        if (c.fd >= 0 && c.done < static_cast<std::uint64_t>(o_.lines)) return false;
      return true;
    };
    while (!gInterrupted && !allIn() && nowNs() < deadline) {
      int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), msUntil(deadline, nowNs()));
      for (int i = 0; i < n; ++i) handle(conns_[evs[i].data.u32], evs[i].events);
    }
    for (Conn& c : conns_)
      if (c.fd >= 0 && c.done < static_cast<std::uint64_t>(o_.lines)) {
        errors_[ETimeout] += static_cast<std::uint64_t>(o_.lines) - c.done;
        if (firstError_.empty()) firstError_ = "a subscriber did not receive every line in time";
      }
  }

  /// idle: one verification echo on every open connection.
  void verifyAll() {
    std::int64_t now = nowNs();
    verifying_ = true;
    for (Conn& c : conns_) {
      if (!c.open) continue;
      issueForce(c, now);
      flush(c);
    }
    drain();
  }

  void closeAll() {
    for (Conn& c : conns_)
      if (c.fd >= 0) closeConn(c);
  }

  std::size_t openCount() const {
    std::size_t n = 0;
    for (const Conn& c : conns_) n += c.open ? 1 : 0;
    return n;
  }

  // ---- results
  Histogram hist;
  std::uint64_t measured = 0, measuredBytes = 0, completed = 0;
  std::int64_t lastCompletion = 0;
  std::uint64_t errors_[kErrKinds] = {};
  std::uint64_t verified = 0;  // idle: connections whose echo came back
  std::string tlsVersion, tlsCipher;  // --tls: of the first completed handshake

 private:
  static int msUntil(std::int64_t deadline, std::int64_t now) {
    std::int64_t ms = (deadline - now + 999999) / 1000000;
    return static_cast<int>(std::clamp<std::int64_t>(ms, 0, 100));
  }

  bool allDone() const {
    for (const Conn& c : conns_)
      if (c.fd >= 0 && (c.done < c.issued || c.connecting)) return false;
    return true;
  }

  template <class StopFn>
  void loop(StopFn stop) {
    std::vector<epoll_event> evs(1024);
    while (!gInterrupted) {
      std::int64_t now = nowNs();
      if (stop(now)) break;
      std::int64_t next = now < sh_.tWarm ? sh_.tWarm.load() : sh_.tEnd.load();
      int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), msUntil(next, now));
      if (n < 0 && errno != EINTR) die(std::string("epoll_wait: ") + std::strerror(errno));
      for (int i = 0; i < n; ++i) handle(conns_[evs[i].data.u32], evs[i].events);
    }
  }

  void drain() {
    std::int64_t deadline = nowNs() + static_cast<std::int64_t>(o_.drainTimeout * 1e9);
    std::vector<epoll_event> evs(1024);
    while (!allDone() && !gInterrupted) {
      std::int64_t now = nowNs();
      if (now >= deadline) break;
      int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), msUntil(deadline, now));
      if (n < 0 && errno != EINTR) die(std::string("epoll_wait: ") + std::strerror(errno));
      for (int i = 0; i < n; ++i) handle(conns_[evs[i].data.u32], evs[i].events);
    }
    for (Conn& c : conns_) {
      if (c.fd < 0) continue;
      if (c.connecting) ++errors_[ETimeout];
      else if (c.done < c.issued) errors_[ETimeout] += c.issued - c.done;
      if (o_.mode == Mode::Churn) kill(c);
    }
  }

  // ---- connections

  bool startConnect(Conn& c, std::int64_t now) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      ++errors_[ESocket];
      if (errno == EMFILE || errno == ENFILE) emfile_ = true;
      return false;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (o_.srcAddrs > 0) {
      // Spread over 127.0.0.1..K: K times the ephemeral ports before TIME_WAIT bites.
      ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      sockaddr_in src{};
      src.sin_family = AF_INET;
      src.sin_addr.s_addr = htonl(0x7f000001u + (srcNext_++ % static_cast<unsigned>(o_.srcAddrs)));
      ::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src);
    }
    c.fd = fd;
    c.connecting = true;
    c.handshaking = false;
    c.open = false;
    c.startNs = now;
    c.sendOff = c.queuedEnd = c.recvOff = c.issued = c.done = 0;
    c.partial.clear();
    c.lastNumber.clear();
    int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&sh_.target), sizeof sh_.target);
    if (rc != 0 && errno != EINPROGRESS) {
      ++errors_[EConnect];
      ::close(fd);
      c.fd = -1;
      c.connecting = false;
      return false;
    }
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u32 = static_cast<std::uint32_t>(&c - conns_.data());
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) die(std::string("epoll_ctl: ") + std::strerror(errno));
    c.wantOut = true;
    return true;
  }

  /// Moves a connection on after its socket was reported: the TCP connect's result, then
  /// with --tls the handshake. 1: ready (open), 0: the handshake waits for the socket
  /// (interest set), -1: failed (counted, closed).
  int advanceConnect(Conn& c) {
    if (!c.handshaking) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        ++errors_[EConnect];
        if (firstError_.empty()) firstError_ = std::string("connect: ") + std::strerror(err);
        kill(c);
        return -1;
      }
      if (!sh_.tls) {
        c.connecting = false;
        c.open = true;
        return 1;
      }
      c.ssl = SSL_new(sh_.tls);
      if (!c.ssl || SSL_set_fd(c.ssl, c.fd) != 1) die("SSL_new: " + takeTlsErrors());
      SSL_set_tlsext_host_name(c.ssl, o_.tlsSni.c_str());
      if (!o_.tlsCa.empty()) SSL_set1_host(c.ssl, o_.tlsSni.c_str());
      SSL_set_connect_state(c.ssl);
      c.handshaking = true;
    }
    const int r = SSL_do_handshake(c.ssl);
    if (r == 1) {
      c.handshaking = c.connecting = false;
      c.open = true;
      if (tlsVersion.empty()) {
        tlsVersion = SSL_get_version(c.ssl);
        tlsCipher = SSL_get_cipher_name(c.ssl);
      }
      return 1;
    }
    const int e = SSL_get_error(c.ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      setInterest(c, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLIN | EPOLLOUT);
      return 0;
    }
    ++errors_[ETls];
    if (firstError_.empty())
      firstError_ = "TLS handshake: " + (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0
                                             ? std::string("connection closed (") + std::strerror(errno) + ")"
                                             : takeTlsErrors());
    ERR_clear_error();
    kill(c);
    return -1;
  }

  void setInterest(Conn& c, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u32 = static_cast<std::uint32_t>(&c - conns_.data());
    epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
    c.wantOut = (events & EPOLLOUT) != 0;
  }

  void kill(Conn& c) {
    if (c.ssl) SSL_free(c.ssl);
    c.ssl = nullptr;
    if (c.fd >= 0) ::close(c.fd);
    c.fd = -1;
    c.open = false;
    c.connecting = c.handshaking = false;
    c.wantOut = false;
  }

  /// An orderly close: with --tls one close_notify first (not waited for).
  void closeConn(Conn& c) {
    if (c.ssl && c.open) {
      SSL_shutdown(c.ssl);
      ERR_clear_error();
    }
    kill(c);
  }

  void startChurn(Conn& c, std::int64_t now) {
    if (!running_ || now >= sh_.tEnd || gInterrupted || emfile_) return;
    if (!takeBudget()) return;
    if (!startConnect(c, now)) {
      // failed at once (refused, out of descriptors): retry on the next round, not in a tight loop
      return;
    }
    c.ts[0] = now;  // churn latency: connect start to echo complete
    c.issued = 1;
    c.queuedEnd = o_.size;
  }

  // ---- messages

  bool takeBudget() {
    if (!o_.maxMsgs) return true;
    if (sh_.budget.fetch_sub(1, std::memory_order_relaxed) > 0) return true;
    budgetOut_ = true;
    return false;
  }

  bool issue(Conn& c, std::int64_t now) {
    if (!running_ || now >= sh_.tEnd) return false;
    if (!takeBudget()) return false;
    issueForce(c, now);
    return true;
  }

  void issueForce(Conn& c, std::int64_t now) {
    c.ts[c.issued % static_cast<std::uint64_t>(o_.depth)] = now;
    ++c.issued;
    c.queuedEnd += o_.size;
  }

  const char* sendSource(const Conn& c) const {
    if (o_.mode == Mode::Line) return sh_.lineBuf.data() + c.sendOff % o_.size;
    return sh_.pattern.data() + (c.base + c.sendOff) % kPeriod;
  }

  void flush(Conn& c) {
    if (c.fd < 0 || c.connecting) return;
    while (c.sendOff < c.queuedEnd) {
      std::size_t len = static_cast<std::size_t>(c.queuedEnd - c.sendOff);
      if (c.ssl) {  // partial writes on: SSL_write returns after each record it could send
        const int n = SSL_write(c.ssl, sendSource(c), static_cast<int>(std::min<std::size_t>(len, INT_MAX)));
        if (n > 0) {
          c.sendOff += static_cast<std::uint64_t>(n);
          continue;
        }
        const int e = SSL_get_error(c.ssl, n);
        if (e == SSL_ERROR_WANT_WRITE) {
          if (!c.wantOut) setInterest(c, EPOLLIN | EPOLLOUT);
          return;
        }
        if (e == SSL_ERROR_WANT_READ) return;  // EPOLLIN is always asked for
        tlsFail(c, e);
        return;
      }
      ssize_t n = ::send(c.fd, sendSource(c), len, MSG_NOSIGNAL);
      if (n > 0) {
        c.sendOff += static_cast<std::uint64_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!c.wantOut) setInterest(c, EPOLLIN | EPOLLOUT);
        return;
      }
      fail(c, errno == ECONNRESET || errno == EPIPE ? EReset : ESocket);
      return;
    }
    if (c.wantOut) setInterest(c, EPOLLIN);
  }

  /// An SSL_read/SSL_write error: the peer's close, a reset, or a TLS failure.
  void tlsFail(Conn& c, int sslError) {
    const unsigned long top = ERR_peek_error();
    if (sslError == SSL_ERROR_ZERO_RETURN ||
        (sslError == SSL_ERROR_SSL && ERR_GET_REASON(top) == SSL_R_UNEXPECTED_EOF_WHILE_READING) ||
        (sslError == SSL_ERROR_SYSCALL && top == 0 && errno == 0)) {
      ERR_clear_error();
      fail(c, EEof);
    } else if (sslError == SSL_ERROR_SYSCALL && top == 0) {
      fail(c, errno == ECONNRESET || errno == EPIPE ? EReset : ESocket);
    } else {
      if (firstError_.empty()) firstError_ = "TLS: " + takeTlsErrors();
      ERR_clear_error();
      fail(c, ETls);
    }
  }

  void fail(Conn& c, Err e) {
    ++errors_[e];
    if (firstError_.empty()) firstError_ = kErrNames[e];
    bool churn = o_.mode == Mode::Churn;
    kill(c);
    if (churn) startChurn(c, nowNs());
  }

  void handle(Conn& c, std::uint32_t events) {
    if (c.fd < 0) return;
    if (c.connecting) {
      const int r = advanceConnect(c);
      if (r < 0) {
        if (o_.mode == Mode::Churn) startChurn(c, nowNs());
        return;
      }
      if (r == 0) return;  // TLS handshake under way
      setInterest(c, EPOLLIN);
      flush(c);
      return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
      if (!(c.ssl ? readTls(c) : readPlain(c))) return;
    if (c.fd >= 0) flush(c);
  }

  /// Reads what the socket has (bounded); false when the connection was closed.
  bool readPlain(Conn& c) {
    for (int round = 0; round < 8 && c.fd >= 0; ++round) {
      ssize_t n = ::recv(c.fd, buf_.data(), buf_.size(), 0);
      if (n > 0) {
        if (!consume(c, buf_.data(), static_cast<std::size_t>(n))) return false;
        if (static_cast<std::size_t>(n) < buf_.size()) break;
        continue;
      }
      if (n == 0) {
        fail(c, EEof);
        return false;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      fail(c, errno == ECONNRESET ? EReset : ESocket);
      return false;
    }
    return true;
  }

  /// --tls: SSL_read gives at most one record a call: read until it wants the socket (bounded).
  bool readTls(Conn& c) {
    for (int round = 0; round < 32 && c.fd >= 0; ++round) {
      const int n = SSL_read(c.ssl, buf_.data(), static_cast<int>(std::min<std::size_t>(buf_.size(), INT_MAX)));
      if (n > 0) {
        if (!consume(c, buf_.data(), static_cast<std::size_t>(n))) return false;
        continue;
      }
      const int e = SSL_get_error(c.ssl, n);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
      tlsFail(c, e);
      return false;
    }
    return c.fd >= 0;
  }

  void complete(Conn& c, std::int64_t now) {
    std::int64_t lat = now - c.ts[c.done % static_cast<std::uint64_t>(o_.depth)];
    ++c.done;
    ++completed;
    lastCompletion = now;
    if (verifying_ || (now >= sh_.tWarm && now <= sh_.tEnd)) {
      hist.record(lat);
      ++measured;
      measuredBytes += o_.mode == Mode::Line ? lastReplyBytes_ : o_.size;
    }
    if (verifying_) ++verified;
  }

  /// Processes received bytes; false when the connection was closed.
  bool consume(Conn& c, const char* data, std::size_t n) {
    if (o_.mode == Mode::Line) return consumeLines(c, data, n);
    if (o_.mode == Mode::Subscribe) return consumeHits(c, data, n);
    if (c.recvOff + n > c.queuedEnd || c.recvOff + n > c.sendOff) {
      fail(c, EExcess);
      return false;
    }
    // verify against the stream that was sent
    std::size_t off = (c.base + c.recvOff) % kPeriod;
    std::size_t left = n;
    const char* p = data;
    while (left) {
      std::size_t chunk = std::min(left, kPeriod - off);
      if (std::memcmp(p, sh_.pattern.data() + off, chunk) != 0) {
        fail(c, ECorrupt);
        return false;
      }
      p += chunk;
      left -= chunk;
      off = 0;
    }
    c.recvOff += n;
    const std::int64_t now = nowNs();
    const std::uint64_t size = o_.size;
    while (c.done < c.issued && c.recvOff >= (c.done + 1) * size) {
      complete(c, now);
      if (o_.mode == Mode::Churn) {
        closeConn(c);
        startChurn(c, now);
        return false;
      }
      if (!verifying_) issue(c, now);
    }
    return true;
  }

  /// subscribe: finds "<hits>" once, then each element carrying our marker + index.
  bool consumeHits(Conn& c, const char* data, std::size_t n) {
    const std::int64_t now = nowNs();
    c.partial.append(data, n);
    std::size_t pos = 0;
    if (!c.issued) {
      std::size_t g = c.partial.find("<hits>");
      if (g == std::string::npos) {
        if (c.partial.size() > 4096) {
          fail(c, EReply);
          return false;
        }
        return true;
      }
      c.issued = 1;
      pos = g + 6;
    }
    if (marker_.empty()) {  // greeting phase: nothing else should arrive yet
      c.partial.erase(0, pos);
      return true;
    }
    for (;;) {
      std::size_t m = c.partial.find(marker_, pos);
      if (m == std::string::npos) break;
      std::size_t d = m + marker_.size(), e = d;
      while (e < c.partial.size() && c.partial[e] >= '0' && c.partial[e] <= '9') ++e;
      if (e == c.partial.size()) break;  // the number may continue in the next read
      pos = e;
      std::uint64_t idx = std::strtoull(c.partial.c_str() + d, nullptr, 10);
      if (idx != c.done || idx >= appendTimes_.size() || appendTimes_[idx] == 0) {
        ++errors_[EOrder];
        if (firstError_.empty()) firstError_ = "hit " + std::to_string(idx) + " arrived, expected " + std::to_string(c.done);
        if (idx < c.done || idx >= appendTimes_.size()) continue;  // a duplicate or a stranger: skip
        c.done = idx;  // lines were skipped: count them lost, follow on
      }
      hist.record(now - appendTimes_[idx]);
      ++measured;
      ++completed;
      ++c.done;
      lastCompletion = now;
    }
    // keep only what may hold the start of an unfinished marker
    std::size_t keep = std::min(c.partial.size() - pos, marker_.size() + 24);
    c.partial.erase(0, c.partial.size() - keep);
    measuredBytes += n;
    return true;
  }

  static bool isNumber(std::string_view s) {
    if (s.empty()) return false;
    for (char ch : s)
      if (ch < '0' || ch > '9') return false;
    return true;
  }
  static bool greater(std::string_view a, std::string_view b) {  // decimal a > b
    if (a.size() != b.size()) return a.size() > b.size();
    return a > b;
  }

  bool consumeLines(Conn& c, const char* data, std::size_t n) {
    const std::int64_t now = nowNs();
    std::size_t pos = 0;
    while (pos < n) {
      const char* nl = static_cast<const char*>(std::memchr(data + pos, '\n', n - pos));
      if (!nl) {
        c.partial.append(data + pos, n - pos);
        if (c.partial.size() > (16u << 20)) {
          fail(c, EReply);
          return false;
        }
        break;
      }
      std::size_t len = static_cast<std::size_t>(nl - (data + pos));
      std::string_view lineView;
      if (c.partial.empty()) {
        lineView = std::string_view(data + pos, len);
      } else {
        c.partial.append(data + pos, len);
        lineView = c.partial;
      }
      lastReplyBytes_ = lineView.size() + 1;
      if (!lineView.empty() && lineView.back() == '\r') lineView.remove_suffix(1);
      pos += len + 1;
      if (c.done >= c.issued) {
        fail(c, EUnsolicited);
        return false;
      }
      bool ok = true;
      if (o_.expect == Expect::Echo) {
        ok = lineView == o_.line;
        if (!ok) ++errors_[EReply];
      } else if (o_.expect == Expect::Number) {
        if (!isNumber(lineView)) {
          ok = false;
          ++errors_[EReply];
          if (firstError_.empty()) firstError_ = "bad reply: " + std::string(lineView.substr(0, 80));
        } else if (!c.lastNumber.empty() && !greater(lineView, c.lastNumber)) {
          ++errors_[EOrder];
          if (firstError_.empty()) firstError_ = "number not increasing on one connection";
        }
        if (ok) c.lastNumber.assign(lineView);
      }
      c.partial.clear();
      complete(c, now);
      if (!verifying_) issue(c, now);
    }
    return true;
  }

  Shared& sh_;
  const Options& o_;
  int ep_ = -1;
  std::vector<Conn> conns_;
  std::vector<char> buf_;
  unsigned srcNext_ = 0;
  bool running_ = false;
  bool verifying_ = false;
  bool subscribing_ = false;
  bool appended_ = false;
  std::vector<std::int64_t> appendTimes_;  // subscribe: when line i was appended
  std::string marker_;                     // subscribe: "/bench/<run>/" before the line index
  bool budgetOut_ = false;
  bool emfile_ = false;
  std::size_t lastReplyBytes_ = 0;

 public:
  std::string firstError_;
};

// ---------------------------------------------------------------- JSON

class Json {
 public:
  Json& num(const char* k, double v, int prec = 3) {
    char b[64];
    if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) std::snprintf(b, sizeof b, "%.0f", v);
    else std::snprintf(b, sizeof b, "%.*f", prec, std::isfinite(v) ? v : 0.0);
    return raw(k, b);
  }
  Json& str(const char* k, const std::string& v) {
    std::string e = "\"";
    for (char ch : v) {
      if (ch == '"' || ch == '\\') e += '\\', e += ch;
      else if (static_cast<unsigned char>(ch) < 0x20) {
        char b[8];
        std::snprintf(b, sizeof b, "\\u%04x", ch);
        e += b;
      } else e += ch;
    }
    e += '"';
    return raw(k, e);
  }
  Json& raw(const char* k, const std::string& v) {
    s_ += s_.empty() ? "{" : ",";
    s_ += "\"";
    s_ += k;
    s_ += "\":";
    s_ += v;
    return *this;
  }
  std::string done() const { return s_ + "}"; }

 private:
  std::string s_;
};

}  // namespace

int main(int argc, char** argv) {
  Options opt = parseArgs(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa{};
  sa.sa_handler = [](int) { gInterrupted = true; };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  raiseFdLimit(static_cast<std::size_t>(opt.conns) + 64);

  Shared sh;
  sh.opt = opt;
  sh.target.sin_family = AF_INET;
  sh.target.sin_port = htons(static_cast<std::uint16_t>(opt.port));
  if (inet_pton(AF_INET, opt.host.c_str(), &sh.target.sin_addr) != 1) die("--host must be an IPv4 address: " + opt.host);
  {
    std::size_t window = opt.size * static_cast<std::size_t>(opt.depth) + 1;
    sh.pattern.resize(kPeriod + window);
    std::uint64_t x = 0x9E3779B97F4A7C15ull;
    for (std::size_t i = 0; i < kPeriod; ++i) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      sh.pattern[i] = static_cast<char>(x >> 32);
    }
    for (std::size_t i = kPeriod; i < sh.pattern.size(); ++i) sh.pattern[i] = sh.pattern[i % kPeriod];
    if (opt.mode == Mode::Line)
      for (int i = 0; i <= opt.depth; ++i) sh.lineBuf += opt.line + "\n";
  }
  sh.budget = static_cast<std::int64_t>(opt.maxMsgs);
  if (opt.tls) {
    sh.tls = SSL_CTX_new(TLS_client_method());
    if (!sh.tls) die("SSL_CTX_new: " + takeTlsErrors());
    SSL_CTX_set_min_proto_version(sh.tls, TLS1_2_VERSION);
    // a write retried after WANT_WRITE may offer more bytes (the queue grew) from the same place
    SSL_CTX_set_mode(sh.tls, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (!opt.tlsCa.empty()) {
      if (SSL_CTX_load_verify_locations(sh.tls, opt.tlsCa.c_str(), nullptr) != 1)
        die("--tls-ca " + opt.tlsCa + ": " + takeTlsErrors());
      SSL_CTX_set_verify(sh.tls, SSL_VERIFY_PEER, nullptr);
    } else {
      SSL_CTX_set_verify(sh.tls, SSL_VERIFY_NONE, nullptr);
    }
  }

  // connections round-robin over workers
  std::vector<std::unique_ptr<Worker>> workers;
  {
    std::vector<std::vector<std::uint32_t>> ids(static_cast<std::size_t>(opt.threads));
    for (int i = 0; i < opt.conns; ++i) ids[static_cast<std::size_t>(i % opt.threads)].push_back(static_cast<std::uint32_t>(i));
    for (auto& v : ids) workers.push_back(std::make_unique<Worker>(sh, std::move(v)));
  }

  Json out;
  out.str("mode", opt.modeName).str("label", opt.label).str("target", opt.host + ":" + std::to_string(opt.port));
  out.num("conns", opt.conns).num("size", static_cast<double>(opt.size)).num("depth", opt.depth).num("threads", opt.threads);
  if (opt.tls) out.raw("tls", "true");
  auto tlsInfo = [&] {  // after the run: what the first handshake of any worker negotiated
    if (!opt.tls) return;
    for (auto& w : workers)
      if (!w->tlsVersion.empty()) {
        out.str("tls_version", w->tlsVersion).str("tls_cipher", w->tlsCipher);
        return;
      }
  };

  ProcSample srvW, srvE;
  double selfW = 0, selfE = 0, busyW = -1, busyE = -1;
  std::int64_t windowEnd = 0;
  std::size_t opened = 0;

  if (opt.mode == Mode::Subscribe) {
    Worker& w = *workers[0];
    int logFd = ::open(opt.logFile.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (logFd < 0) die("cannot open --log-file " + opt.logFile + ": " + std::strerror(errno));
    std::int64_t t0 = nowNs();
    opened = w.connectAll(t0 + static_cast<std::int64_t>(opt.connectTimeout * 1e9));
    std::size_t greeted = w.awaitGreetings(nowNs() + static_cast<std::int64_t>(opt.connectTimeout * 1e9));
    double setupSeconds = static_cast<double>(nowNs() - t0) / 1e9;
    ProcSample s0 = sampleServer(opt.serverPid, opt.extraPids);
    std::int64_t a0 = nowNs();
    std::string marker = "/bench/" + std::to_string(getpid()) + "-" + std::to_string(a0 % 1000000007) + "/";
    w.runSubscribe(logFd, marker);
    double runSeconds = static_cast<double>(nowNs() - a0) / 1e9;
    ProcSample s1 = sampleServer(opt.serverPid, opt.extraPids);
    ::close(logFd);
    w.closeAll();
    const Histogram& h = w.hist;
    std::uint64_t errs = 0;
    for (std::uint64_t e : w.errors_) errs += e;
    out.num("connected", static_cast<double>(opened)).num("subscribed", static_cast<double>(greeted));
    out.num("lines", opt.lines).num("interval_ms", opt.intervalMs, 2).num("setup_s", setupSeconds, 3);
    out.num("deliveries_expected", static_cast<double>(greeted) * opt.lines).num("deliveries", static_cast<double>(w.measured));
    out.num("deliveries_per_s", static_cast<double>(w.measured) / std::max(runSeconds, 1e-9), 1);
    out.num("mean_us", h.mean() / 1e3, 2);
    out.num("p50_us", static_cast<double>(h.percentile(0.50)) / 1e3, 2).num("p99_us", static_cast<double>(h.percentile(0.99)) / 1e3, 2);
    out.num("p999_us", static_cast<double>(h.percentile(0.999)) / 1e3, 2).num("max_us", static_cast<double>(h.max()) / 1e3, 2);
    if (s0.ok && s1.ok) out.num("server_cpu_pct", 100.0 * (s1.cpuSeconds - s0.cpuSeconds) / runSeconds, 1);
    std::string kinds = "{";
    for (int k = 0; k < kErrKinds; ++k)
      if (w.errors_[k]) kinds += std::string(kinds.size() > 1 ? "," : "") + "\"" + kErrNames[k] + "\":" + std::to_string(w.errors_[k]);
    kinds += "}";
    if (greeted < static_cast<std::size_t>(opt.conns) && errs == 0) errs = static_cast<std::uint64_t>(opt.conns) - greeted;
    tlsInfo();
  out.num("errors", static_cast<double>(errs)).raw("error_kinds", kinds);
    if (!w.firstError_.empty()) out.str("first_error", w.firstError_);
    std::printf("%s\n", out.done().c_str());
    return errs ? 1 : 0;
  }

  if (opt.mode == Mode::Idle) {
    Worker& w = *workers[0];
    ProcSample before = sampleServer(opt.serverPid, opt.extraPids, true);
    const long overflows0 = listenOverflows();
    std::int64_t t0 = nowNs();
    opened = w.connectAll(t0 + static_cast<std::int64_t>(opt.connectTimeout * 1e9));
    double connectSeconds = static_cast<double>(nowNs() - t0) / 1e9;
    // Wait until the server has accepted them all (its descriptor count), bounded.
    long serverFds = -1;
    if (before.ok) {
      std::int64_t until = nowNs() + 10'000'000'000LL;
      do {
        serverFds = countDir("/proc/" + std::to_string(opt.serverPid) + "/fd");
        if (serverFds >= before.fds + static_cast<long>(opened)) break;
        usleep(20000);
      } while (nowNs() < until && !gInterrupted);
    }
    usleep(300000);  // let the server settle after the accept burst
    ProcSample held = sampleServer(opt.serverPid, opt.extraPids);
    std::int64_t h0 = nowNs();
    while (nowNs() - h0 < static_cast<std::int64_t>(opt.duration * 1e9) && !gInterrupted) usleep(50000);
    double holdSeconds = static_cast<double>(nowNs() - h0) / 1e9;
    ProcSample heldEnd = sampleServer(opt.serverPid, opt.extraPids);
    std::size_t stillOpen = w.openCount();
    sh.tStart = sh.tWarm = nowNs();
    sh.tEnd = sh.tWarm + static_cast<std::int64_t>(opt.drainTimeout * 1e9);
    w.verifyAll();
    usleep(300000);  // let the server drop per-connection buffers after the echo
    ProcSample after = sampleServer(opt.serverPid, opt.extraPids);
    w.closeAll();

    std::uint64_t errs = 0;
    for (std::uint64_t e : w.errors_) errs += e;
    if (w.verified < static_cast<std::uint64_t>(opt.conns)) {
      // a connection that never opened already counts as a connect error
    }
    out.num("connected", static_cast<double>(opened)).num("held", static_cast<double>(stillOpen));
    out.num("verified", static_cast<double>(w.verified)).num("connect_s", connectSeconds, 3);
    out.num("hold_s", holdSeconds, 3);
    if (overflows0 >= 0) out.num("listen_overflows", static_cast<double>(listenOverflows() - overflows0));
    if (before.ok && held.ok && after.ok) {
      double n = std::max<double>(1, static_cast<double>(opened));
      out.num("server_fds_before", static_cast<double>(before.fds)).num("server_fds_held", static_cast<double>(serverFds));
      out.num("server_rss_kb_before", static_cast<double>(before.rssKb));
      out.num("server_rss_kb_held", static_cast<double>(held.rssKb));
      out.num("server_rss_kb_after", static_cast<double>(after.rssKb));
      out.num("server_hwm_kb", static_cast<double>(after.hwmKb));
      double perHeld = static_cast<double>(held.rssKb - before.rssKb) / n;
      double perAfter = static_cast<double>(after.rssKb - before.rssKb) / n;
      out.num("kib_per_conn_held", perHeld, 3).num("kib_per_conn_after", perAfter, 3);
      out.num("kib_per_conn", std::max(perHeld, perAfter), 3);
      if (heldEnd.ok) {
        out.num("server_idle_cpu_pct", 100.0 * (heldEnd.cpuSeconds - held.cpuSeconds) / holdSeconds, 2);
        out.num("server_idle_wakeups_per_s", static_cast<double>(heldEnd.ctxSwitches - held.ctxSwitches) / holdSeconds, 1);
      }
    }
    const Histogram& h = w.hist;
    out.num("p50_us", static_cast<double>(h.percentile(0.50)) / 1e3).num("p99_us", static_cast<double>(h.percentile(0.99)) / 1e3);
    out.num("max_us", static_cast<double>(h.max()) / 1e3);
    std::string kinds = "{";
    for (int k = 0; k < kErrKinds; ++k)
      if (w.errors_[k]) kinds += std::string(kinds.size() > 1 ? "," : "") + "\"" + kErrNames[k] + "\":" + std::to_string(w.errors_[k]);
    kinds += "}";
    if (w.verified < opened && errs == 0) errs = opened - w.verified;
    tlsInfo();
  out.num("errors", static_cast<double>(errs)).raw("error_kinds", kinds);
    if (!w.firstError_.empty()) out.str("first_error", w.firstError_);
    std::printf("%s\n", out.done().c_str());
    return errs ? 1 : 0;
  }

  // echo / line / churn
  std::barrier sync(static_cast<std::ptrdiff_t>(workers.size()), [&]() noexcept {
    sh.tStart = nowNs();
    sh.tWarm = sh.tStart + static_cast<std::int64_t>(opt.warmup * 1e9);
    sh.tEnd = sh.tWarm + static_cast<std::int64_t>(opt.duration * 1e9);
  });
  std::atomic<std::size_t> openedAll{0};
  const long overflows0 = listenOverflows();
  std::int64_t connectDeadline = nowNs() + static_cast<std::int64_t>(opt.connectTimeout * 1e9);
  auto body = [&](Worker& w) {
    if (opt.mode != Mode::Churn) openedAll += w.connectAll(connectDeadline);
    sync.arrive_and_wait();
    if (opt.mode == Mode::Churn) w.runChurn();
    else w.runTraffic();
  };
  // Sample the server and ourselves at the start of the measurement window
  // from a helper thread that sleeps until then (the workers never block on it).
  std::thread sampler;
  std::atomic<bool> sampledW{false};
  {
    std::vector<std::thread> ts;
    for (std::size_t i = 1; i < workers.size(); ++i) ts.emplace_back(body, std::ref(*workers[i]));
    sampler = std::thread([&] {
      while (sh.tWarm == 0 && !gInterrupted) usleep(1000);
      std::int64_t t;
      while ((t = nowNs()) < sh.tWarm && !gInterrupted) usleep(static_cast<useconds_t>(std::min<std::int64_t>((sh.tWarm - t) / 1000 + 1, 100000)));
      srvW = sampleServer(opt.serverPid, opt.extraPids);
      selfW = selfCpuSeconds();
      busyW = machineBusySeconds();
      sampledW = true;
    });
    body(*workers[0]);
    for (auto& t : ts) t.join();
  }
  // The window ends at tEnd, or earlier when --max-msgs ran out.
  std::int64_t lastCompletion = 0;
  for (auto& w : workers) lastCompletion = std::max(lastCompletion, w->lastCompletion);
  windowEnd = std::min(sh.tEnd.load(), std::max(lastCompletion, sh.tWarm.load()));
  sampler.join();
  srvE = sampleServer(opt.serverPid, opt.extraPids);
  selfE = selfCpuSeconds();
  busyE = machineBusySeconds();
  opened = openedAll.load();

  Histogram h;
  std::uint64_t measured = 0, bytes = 0, completed = 0, errs = 0;
  std::uint64_t kindsN[kErrKinds] = {};
  std::string firstError;
  for (auto& w : workers) {
    h.merge(w->hist);
    measured += w->measured;
    bytes += w->measuredBytes;
    completed += w->completed;
    for (int k = 0; k < kErrKinds; ++k) kindsN[k] += w->errors_[k], errs += w->errors_[k];
    if (firstError.empty()) firstError = w->firstError_;
  }
  double window = static_cast<double>(windowEnd - sh.tWarm) / 1e9;
  if (window <= 0) window = 1e-9;
  // CPU is sampled by the helper at the window start and here at the end of the drain:
  // the drain is short (in-flight replies only), so this is the window's use to within it.
  double wall = static_cast<double>(nowNs() - sh.tWarm) / 1e9;
  out.num("connected", static_cast<double>(opt.mode == Mode::Churn ? completed : opened));
  out.num("window_s", window, 4).num("msgs", static_cast<double>(measured)).num("total_msgs", static_cast<double>(completed));
  out.num("msgs_per_s", static_cast<double>(measured) / window, 1);
  out.num("mb_per_s", static_cast<double>(bytes) / 1e6 / window, 3);
  out.num("mean_us", h.mean() / 1e3, 2);
  out.num("p50_us", static_cast<double>(h.percentile(0.50)) / 1e3, 2);
  out.num("p90_us", static_cast<double>(h.percentile(0.90)) / 1e3, 2);
  out.num("p99_us", static_cast<double>(h.percentile(0.99)) / 1e3, 2);
  out.num("p999_us", static_cast<double>(h.percentile(0.999)) / 1e3, 2);
  out.num("max_us", static_cast<double>(h.max()) / 1e3, 2);
  if (sampledW && wall > 0) out.num("loadgen_cpu_pct", 100.0 * (selfE - selfW) / wall, 1);
  if (srvW.ok && srvE.ok && wall > 0) {
    out.num("server_cpu_pct", 100.0 * (srvE.cpuSeconds - srvW.cpuSeconds) / wall, 1);
    out.num("server_user_pct", 100.0 * (srvE.userSeconds - srvW.userSeconds) / wall, 1);
    out.num("server_rss_kb", static_cast<double>(srvE.rssKb)).num("server_hwm_kb", static_cast<double>(srvE.hwmKb));
  }
  if (sampledW && wall > 0 && busyW >= 0 && busyE >= 0) {
    // CPU used by everything else on the machine during the window, in % of one core:
    // other people's builds on a shared machine show up here.
    double foreign = (busyE - busyW) - (selfE - selfW) - (srvE.ok && srvW.ok ? srvE.cpuSeconds - srvW.cpuSeconds : 0);
    out.num("foreign_cpu_pct", std::max(0.0, 100.0 * foreign / wall), 1);
  }
  if (overflows0 >= 0) out.num("listen_overflows", static_cast<double>(listenOverflows() - overflows0));
  std::string kinds = "{";
  for (int k = 0; k < kErrKinds; ++k)
    if (kindsN[k]) kinds += std::string(kinds.size() > 1 ? "," : "") + "\"" + kErrNames[k] + "\":" + std::to_string(kindsN[k]);
  kinds += "}";
  if (opt.mode != Mode::Churn && opened < static_cast<std::size_t>(opt.conns) && errs == 0) errs = static_cast<std::uint64_t>(opt.conns) - opened;
  tlsInfo();
  out.num("errors", static_cast<double>(errs)).raw("error_kinds", kinds);
  if (!firstError.empty()) out.str("first_error", firstError);
  if (gInterrupted) out.raw("interrupted", "true");
  std::printf("%s\n", out.done().c_str());
  return errs ? 1 : 0;
}
