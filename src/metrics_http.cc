#include "metrics_http.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <thread>

#include "timevault/core/pg.h"
#include "timevault/core/time.h"

namespace timevault::cli {

struct MetricsEndpoint::Impl {
  httplib::Server http;
  std::thread thread;
};

MetricsEndpoint::MetricsEndpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsEndpoint::~MetricsEndpoint() {
  impl_->http.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

Result<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(const std::string& listen,
                                                                std::function<std::string()> render) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return InvalidArgument("--metrics-listen: expected host:port, got '" + listen + "'");
  std::string host = listen.substr(0, colon);
  int port = 0;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (...) {
    return InvalidArgument("--metrics-listen: bad port in '" + listen + "'");
  }
  auto impl = std::make_unique<Impl>();
  impl->http.Get("/metrics", [render](const httplib::Request&, httplib::Response& res) {
    res.set_content(render(), "text/plain; version=0.0.4");
  });
  impl->http.Get("/livez", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"alive"})", "application/json");
  });
  if (!impl->http.bind_to_port(host, port))
    return Unavailable("--metrics-listen: cannot bind " + listen + " (in use?)");
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->http.listen_after_bind(); });
  spdlog::info("metrics: serving Prometheus metrics on http://{}/metrics", listen);
  return std::unique_ptr<MetricsEndpoint>(new MetricsEndpoint(std::move(impl)));
}

namespace {

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// One metric family: HELP, TYPE and its samples ("name{labels} value" lines).
void Family(std::string& out, const std::string& name, const char* type, const char* help,
            const std::vector<std::pair<std::string, double>>& samples) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  for (const auto& [labels, v] : samples) out += name + labels + " " + Num(v) + "\n";
}
void One(std::string& out, const std::string& name, const char* type, const char* help, double v) {
  Family(out, name, type, help, {{"", v}});
}

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

std::string BuildInfoText(const std::string& command) {
  std::string out;
  Family(out, "timevault_build_info", "gauge", "The running timevault's version and command.",
         {{"{version=\"" + Escape(TV_VERSION) + "\",command=\"" + Escape(command) + "\"}", 1}});
  return out;
}

std::string CaptureMetricsText(const config::Config& cfg, const capture::CaptureMetrics& m, pg::ReusedConn& slot_conn) {
  std::string out;
  One(out, "timevault_capture_events_produced_total", "counter", "Change events handed to the Kafka producer.",
      static_cast<double>(m.produced_events.load()));
  One(out, "timevault_capture_events_acked_total", "counter", "Change events Kafka acknowledged.",
      static_cast<double>(m.acked_events.load()));
  One(out, "timevault_capture_produced_bytes_total", "counter", "Bytes of change events produced.",
      static_cast<double>(m.produced_bytes.load()));
  One(out, "timevault_capture_transactions_total", "counter", "Transactions captured.",
      static_cast<double>(m.transactions.load()));
  One(out, "timevault_capture_confirmed_lsn", "gauge", "The flush position last confirmed to Postgres.",
      static_cast<double>(m.confirmed_lsn.load()));
  One(out, "timevault_capture_server_wal_end_lsn", "gauge", "The newest WAL end the server reported.",
      static_cast<double>(m.server_wal_end.load()));
  One(out, "timevault_capture_lag_bytes", "gauge", "WAL between the server's end and the confirmed position.",
      static_cast<double>(m.lag_bytes()));
  One(out, "timevault_capture_last_commit_timestamp_seconds", "gauge",
      "Commit time of the newest transaction captured.", static_cast<double>(m.last_commit_time_us.load()) / 1e6);
  One(out, "timevault_capture_reconnects_total", "counter", "Reconnections to Postgres or Kafka.",
      static_cast<double>(m.reconnects.load()));
  One(out, "timevault_capture_streaming", "gauge", "1 while the replication stream is up.", m.streaming.load() ? 1 : 0);
  // The slot as Postgres sees it: WAL it retains, whether a walsender holds it.
  double up = 0, retained = 0, active = 0;
  {
    auto r = slot_conn.ExecParams(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, active FROM pg_replication_slots "
        "WHERE slot_name = $1",
        {cfg.postgres.slot});
    if (r.ok() && r->rows() == 1) {
      up = 1;
      retained = r->IsNull(0, 0) ? 0 : std::stod(r->GetString(0, 0));
      active = r->GetString(0, 1) == "t" ? 1 : 0;
    }
  }
  One(out, "timevault_capture_slot_up", "gauge", "1 when the replication slot could be read from Postgres.", up);
  One(out, "timevault_capture_slot_wal_retained_bytes", "gauge", "WAL the replication slot keeps on the server.",
      retained);
  One(out, "timevault_capture_slot_active", "gauge", "1 when a walsender holds the slot.", active);
  return out;
}

std::string StoreMetricsText(const store::IngestMetrics& m, store::Store* st) {
  std::string out;
  One(out, "timevault_store_messages_consumed_total", "counter", "Kafka messages consumed.",
      static_cast<double>(m.consumed.load()));
  One(out, "timevault_store_batches_applied_total", "counter", "Batches written to RocksDB.",
      static_cast<double>(m.applied_batches.load()));
  One(out, "timevault_store_dead_letters_total", "counter", "Messages stored as dead letters by this process.",
      static_cast<double>(m.dead_letters.load()));
  One(out, "timevault_store_rebalances_total", "counter", "Consumer group rebalances.",
      static_cast<double>(m.rebalances.load()));
  std::vector<std::pair<std::string, double>> lag;
  for (const auto& [tp, n] : m.Lag()) {
    size_t slash = tp.rfind('/');
    std::string topic = tp.substr(0, slash), partition = slash == std::string::npos ? "" : tp.substr(slash + 1);
    lag.emplace_back("{topic=\"" + Escape(topic) + "\",partition=\"" + Escape(partition) + "\"}",
                     static_cast<double>(n));
  }
  Family(out, "timevault_store_consumer_lag_messages", "gauge", "Messages behind the high watermark, per partition.",
         lag);
  if (st != nullptr) {
    store::StoreStats s = st->Stats();
    One(out, "timevault_store_size_bytes", "gauge", "Bytes the store occupies on disk.",
        static_cast<double>(s.bytes_on_disk));
    One(out, "timevault_store_events", "gauge", "Change events held by the store.",
        static_cast<double>(s.events_stored));
    One(out, "timevault_store_dead_letters", "gauge", "Messages in the dead-letter store.",
        static_cast<double>(s.dead_letters));
    One(out, "timevault_store_wal_bytes", "gauge", "Bytes of RocksDB write-ahead log files.",
        static_cast<double>(s.wal_bytes));
    if (s.events_stored > 0) {
      One(out, "timevault_store_bytes_per_event", "gauge", "Bytes on disk per change event stored.",
          static_cast<double>(s.bytes_on_disk) / static_cast<double>(s.events_stored));
    }
    if (s.recoverable) {
      double t = static_cast<double>(s.recoverable->time.micros()) / 1e6;
      One(out, "timevault_store_recoverable_point_timestamp_seconds", "gauge",
          "Commit time of the recoverable point (the newest time a PITR can reach).", t);
      One(out, "timevault_store_recoverable_point_age_seconds", "gauge",
          "Now minus the recoverable point's commit time.",
          static_cast<double>(SystemClock().Now().micros()) / 1e6 - t);
    }
  }
  return out;
}

}  // namespace timevault::cli
