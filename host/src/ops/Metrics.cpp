#include "ops/Metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "base/Log.h"
#include "protohost/Protocol.h"

namespace protohost::host {
namespace {

class Page {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  }
  template <class V>
  void sample(const char* name, const std::string& labels, V value) {
    out_ << name;
    if (!labels.empty()) out_ << "{" << labels << "}";
    out_ << " " << value << "\n";
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

std::string label(const char* key, const std::string& value) {
  std::string v;
  for (char c : value) {
    if (c == '\\' || c == '"') v.push_back('\\');
    if (c == '\n') {
      v += "\\n";
      continue;
    }
    v.push_back(c);
  }
  return std::string(key) + "=\"" + v + "\"";
}

struct ProcessFigures {
  double cpuSeconds = 0, startTime = 0;
  long rssBytes = 0, vsizeBytes = 0, openFds = 0;
};

ProcessFigures readProcess() {
  ProcessFigures f;
  std::ifstream stat("/proc/self/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = content.rfind(')');
  if (close != std::string::npos) {
    std::istringstream fields(content.substr(close + 2));
    std::vector<std::string> v;
    for (std::string t; fields >> t;) v.push_back(t);
    // Fields after "(comm)": index 0 = state (field 3); utime = field 14, stime 15, starttime 22, vsize 23, rss 24.
    const long tick = ::sysconf(_SC_CLK_TCK);
    if (v.size() > 22) {
      f.cpuSeconds = (std::stod(v[11]) + std::stod(v[12])) / static_cast<double>(tick);
      double bootTime = 0;
      std::ifstream procStat("/proc/stat");
      for (std::string line; std::getline(procStat, line);)
        if (line.rfind("btime ", 0) == 0) bootTime = std::stod(line.substr(6));
      f.startTime = bootTime + std::stod(v[19]) / static_cast<double>(tick);
      f.vsizeBytes = std::stol(v[20]);
      f.rssBytes = std::stol(v[21]) * ::sysconf(_SC_PAGESIZE);
    }
  }
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++f.openFds;
    ::closedir(d);
    --f.openFds;  // the directory stream itself
  }
  return f;
}

}  // namespace

std::string renderMetrics(const std::vector<ListenerFigures>& listeners, const HostStats& host,
                          const WorkerFigures& workers) {
  Page p;
  auto perListener = [&](const char* name, const char* type, const char* help, auto get) {
    p.family(name, type, help);
    for (const auto& l : listeners) p.sample(name, label("listener", l.name), get(l));
  };
  perListener("protohost_connections_open", "gauge", "Connections currently open.",
              [](const ListenerFigures& l) { return l.stats->open.load(); });
  perListener("protohost_connections_accepted_total", "counter", "Connections accepted (before limits).",
              [](const ListenerFigures& l) { return l.stats->accepted.load(); });
  p.family("protohost_connections_refused_total", "counter", "Connections refused at accept, by limit.");
  for (const auto& l : listeners)
    for (auto r : {Refusal::HostMaxConnections, Refusal::MaxConnections, Refusal::MaxConnectionsPerIp})
      p.sample("protohost_connections_refused_total", label("listener", l.name) + "," + label("reason", refusalName(r)),
               l.stats->refused[static_cast<std::size_t>(r)].load());
  p.family("protohost_connections_closed_total", "counter", "Connections closed, by reason.");
  for (const auto& l : listeners)
    for (std::size_t k = 0; k < kCloseKinds; ++k)
      p.sample("protohost_connections_closed_total", label("listener", l.name) + "," + label("reason", closeKindName(k)),
               l.stats->closed[k].load());
  // Outbound connections (Reactor::connect) of each listener's plugin code;
  // the families above count accepted connections only.
  const std::string out = label("direction", "out");
  auto outbound = [&](const char* name, const char* type, const char* help, auto get) {
    p.family(name, type, help);
    for (const auto& l : listeners) p.sample(name, label("listener", l.name) + "," + out, get(l.stats->outbound));
  };
  auto outboundByReason = [&](const char* name, const char* help, const auto& counts, auto reasonName) {
    p.family(name, "counter", help);
    for (const auto& l : listeners)
      for (std::size_t k = 0; k < std::size(counts(l.stats->outbound)); ++k)
        p.sample(name, label("listener", l.name) + "," + out + "," + label("reason", reasonName(k)),
                 counts(l.stats->outbound)[k].load());
  };
  outbound("protohost_connections_opened_total", "counter", "Outbound connections made (connect succeeded).",
           [](const OutboundStats& o) { return o.opened.load(); });
  outbound("protohost_connections_active", "gauge", "Outbound connections currently open.",
           [](const OutboundStats& o) { return o.active.load(); });
  outboundByReason("protohost_connections_failed_total", "Outbound connects that failed, by reason.",
                   [](const OutboundStats& o) -> const auto& { return o.failed; }, connectErrorKindName);
  outboundByReason("protohost_connections_ended_total", "Outbound connections closed, by reason.",
                   [](const OutboundStats& o) -> const auto& { return o.closed; }, closeKindName);
  // udp: listeners (a listener name that never listened on udp: has no samples here;
  // without any, the families are left out).
  const bool anyDatagram = std::any_of(listeners.begin(), listeners.end(), [](const ListenerFigures& l) {
    return l.stats->datagrams.active.load(std::memory_order_relaxed);
  });
  auto datagramListener = [&](const char* name, const char* help, auto get) {
    p.family(name, "counter", help);
    for (const auto& l : listeners)
      if (l.stats->datagrams.active.load(std::memory_order_relaxed))
        p.sample(name, label("listener", l.name), get(l.stats->datagrams));
  };
  if (anyDatagram) {
    datagramListener("protohost_datagrams_received_total", "Datagrams received (all, the dropped ones included).",
                     [](const DatagramStats& d) { return d.received.load(); });
    datagramListener("protohost_datagrams_sent_total", "Datagrams sent.",
                     [](const DatagramStats& d) { return d.sent.load(); });
    p.family("protohost_datagrams_dropped_total", "counter",
             "Datagrams dropped, by reason: the host's (too_large, send_failed, plugin_error) and the protocol's own.");
    for (const auto& l : listeners) {
      if (!l.stats->datagrams.active.load(std::memory_order_relaxed)) continue;
      for (std::size_t k = 0; k < static_cast<std::size_t>(DatagramDrop::Count); ++k)
        p.sample("protohost_datagrams_dropped_total",
                 label("listener", l.name) + "," + label("reason", datagramDropName(static_cast<DatagramDrop>(k))),
                 l.stats->datagrams.dropped[k].load());
      for (const auto& [reason, count] : l.stats->datagrams.pluginDrops())
        p.sample("protohost_datagrams_dropped_total", label("listener", l.name) + "," + label("reason", reason), count);
    }
  }
  // ssl: listeners (left out when there is none, like the datagram families).
  if (std::any_of(listeners.begin(), listeners.end(), [](const ListenerFigures& l) { return l.stats->tls.load(); })) {
    p.family("protohost_tls_handshakes_total", "counter",
             "TLS handshakes of ssl: listeners, by result: ok, failed (a protocol error: plaintext, a bad "
             "ClientHello or client certificate), closed (the peer left during it), timeout.");
    for (const auto& l : listeners) {
      if (!l.stats->tls.load(std::memory_order_relaxed)) continue;
      for (std::size_t k = 0; k < static_cast<std::size_t>(TlsHandshakeResult::Count); ++k)
        p.sample("protohost_tls_handshakes_total",
                 label("listener", l.name) + "," + label("result", tlsHandshakeResultName(static_cast<TlsHandshakeResult>(k))),
                 l.stats->tlsHandshakes[k].load());
    }
    p.family("protohost_tls_ktls_connections_total", "counter",
             "TLS connections whose record layer the kernel took over after the handshake (ktls=on), by direction.");
    for (const auto& l : listeners) {
      if (!l.stats->tls.load(std::memory_order_relaxed)) continue;
      p.sample("protohost_tls_ktls_connections_total", label("listener", l.name) + "," + label("direction", "send"),
               l.stats->ktlsSend.load());
      p.sample("protohost_tls_ktls_connections_total", label("listener", l.name) + "," + label("direction", "receive"),
               l.stats->ktlsReceive.load());
    }
  }
  perListener("protohost_received_bytes_total", "counter", "Bytes received from clients.",
              [](const ListenerFigures& l) { return l.stats->bytesIn.load(); });
  perListener("protohost_sent_bytes_total", "counter", "Bytes sent to clients.",
              [](const ListenerFigures& l) { return l.stats->bytesOut.load(); });
  p.family("protohost_plugin_errors_total", "counter", "Exceptions thrown by plugin code.");
  for (const auto& l : listeners)
    p.sample("protohost_plugin_errors_total", label("listener", l.name) + "," + label("plugin", l.pluginName),
             l.stats->pluginErrors.load());
  perListener("protohost_accept_errors_total", "counter", "accept() failures (EMFILE and others).",
              [](const ListenerFigures& l) { return l.stats->acceptErrors.load(); });
  perListener("protohost_proxy_header_errors_total", "counter",
              "Connections closed for a malformed, missing or late PROXY protocol header.",
              [](const ListenerFigures& l) { return l.stats->proxyHeaderErrors.load(); });
  perListener("protohost_listener_ready", "gauge", "1 when the listener's factory reports ready.",
              [](const ListenerFigures& l) { return l.ready ? 1 : 0; });
  p.family("protohost_config_reloads_total", "counter", "Successful configuration reloads (SIGHUP).");
  p.sample("protohost_config_reloads_total", "", host.reloads.load());
  p.family("protohost_config_reload_failures_total", "counter", "Rejected configuration reloads.");
  p.sample("protohost_config_reload_failures_total", "", host.reloadFailures.load());
  p.family("protohost_config_last_reload_success", "gauge", "1 when the last reload succeeded (or none was tried).");
  p.sample("protohost_config_last_reload_success", "", host.lastReloadOk.load() ? 1 : 0);
  p.family("protohost_watchdog_misses_total", "counter", "Reactor loops found blocked by the watchdog.");
  p.sample("protohost_watchdog_misses_total", "", host.watchdogMisses.load());
  p.family("protohost_worker_queued", "gauge", "deferToThread work waiting for a worker thread.");
  p.sample("protohost_worker_queued", "", workers.queued);
  p.family("protohost_worker_running", "gauge", "deferToThread work running on a worker thread.");
  p.sample("protohost_worker_running", "", workers.running);
  p.family("protohost_worker_rejected_total", "counter", "deferToThread work refused because the queue was full.");
  p.sample("protohost_worker_rejected_total", "", workers.rejected);
  p.family("protohost_worker_completed_total", "counter", "deferToThread work that ran to its end (returned or threw).");
  p.sample("protohost_worker_completed_total", "", workers.completed);
  p.family("protohost_log_lines_dropped_total", "counter", "Log lines dropped because the log output was blocked.");
  p.sample("protohost_log_lines_dropped_total", "", Log::instance().droppedLines());

  ProcessFigures f = readProcess();
  p.family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
  p.sample("process_cpu_seconds_total", "", f.cpuSeconds);
  p.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  p.sample("process_resident_memory_bytes", "", f.rssBytes);
  p.family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
  p.sample("process_virtual_memory_bytes", "", f.vsizeBytes);
  p.family("process_open_fds", "gauge", "Number of open file descriptors.");
  p.sample("process_open_fds", "", f.openFds);
  p.family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
  p.sample("process_start_time_seconds", "", static_cast<long long>(f.startTime));
  return p.str();
}

}  // namespace protohost::host
