// The idle probe (docs/capture.md, "Idle databases"): on a database where
// nothing commits, the walsender sends a keepalive only every
// wal_sender_timeout / 2 (30 s by default), so a recoverable *time* that
// waited for the stream stood still that long. Every heartbeat interval
// capture writes a non-transactional logical message carrying a server time
// T such that every transaction whose commit time is <= T has its commit
// record before the message. When the stream delivers the message, every
// such commit has reached capture before it, so the message's LSN and T
// become a marker in the ack order, and a heartbeat carries them to the
// store as soon as Kafka holds everything before it.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>

#include "capture/session.h"

namespace timevault::capture {
namespace {

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Transactions holding an xid when the statement's snapshot was taken, with
// what bounds their commit times. A transaction that is idle in transaction
// when its activity is read (after the snapshot, after T) has not begun to
// commit, so its commit time will be later than T. Any other one may have
// taken its commit time before T and not yet written its commit record: its
// commit time is at least its start, so T is lowered to just before it. One
// whose activity is not visible (another user's without pg_read_all_stats,
// a prepared transaction) cannot be bounded: unknown > 0, no probe.
constexpr char kOpenTransactionsSql[] = R"SQL(
SELECT count(*) FILTER (WHERE a.xact_start IS NULL),
       (extract(epoch FROM min(a.xact_start)) * 1000000)::bigint
FROM pg_snapshot_xip(pg_current_snapshot()) x
LEFT JOIN pg_stat_activity a ON a.backend_xid = (x::text::bigint % 4294967296)::text::xid
WHERE a.state IS DISTINCT FROM 'idle in transaction'
  AND a.state IS DISTINCT FROM 'idle in transaction (aborted)'
)SQL";

std::optional<int64_t> ParseMicros(std::string_view text) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

}  // namespace

Status Session::MaybeProbeIdle() {
  if (!config_.kafka.idle_probe || !probe_enabled_ || SteadyMs() - last_probe_ms_ < config_.kafka.heartbeat_interval_ms)
    return Status::Ok();
  last_probe_ms_ = SteadyMs();
  Result<std::optional<int64_t>> bound = IdleBound();
  if (!bound.ok()) {
    // The probe is an optimisation of the recoverable time, never of what is
    // confirmed: without it the keepalives still advance it (slowly).
    spdlog::warn("capture: idle probe disabled: {} (the recoverable time advances only with commits and keepalives)",
                 bound.status().ToString());
    probe_enabled_ = false;
    return Status::Ok();
  }
  if (!*bound || **bound <= last_probe_time_us_) return Status::Ok();
  TV_RETURN_IF_ERROR(catalog_
                         .ExecParams("SELECT pg_logical_emit_message(false, $1, $2)",
                                     {std::string(kIdleProbePrefix), std::to_string(**bound)})
                         .status());
  last_probe_time_us_ = **bound;
  return Status::Ok();
}

// Three statements, in this order: T is read, then (a later snapshot) the
// transactions that may have taken a commit time <= T without having written
// their commit record, then (by the caller) the message is written. nullopt:
// nothing to claim now.
Result<std::optional<int64_t>> Session::IdleBound() {
  TV_ASSIGN_OR_RETURN(auto now, catalog_.Exec("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint"));
  auto t = ParseMicros(now.Get(0, 0));
  if (!t) return Internal("clock_timestamp() gave '" + now.GetString(0, 0) + "'");
  TV_ASSIGN_OR_RETURN(auto open, catalog_.Exec(kOpenTransactionsSql));
  if (open.Get(0, 0) != "0") return std::optional<int64_t>();
  if (open.IsNull(0, 1)) return std::optional<int64_t>(*t);
  auto earliest = ParseMicros(open.Get(0, 1));
  if (!earliest) return Internal("xact_start gave '" + open.GetString(0, 1) + "'");
  return std::optional<int64_t>(std::min(*t, *earliest - 1));
}

Status Session::OnIdleProbe(const pgoutput::LogicalMessage& message, Lsn lsn) {
  auto t = ParseMicros(message.content);
  if (message.transactional || !t) {
    spdlog::warn("capture: ignoring a malformed {} message at {}", kIdleProbePrefix, lsn.ToString());
    return Status::Ok();
  }
  if (tx_) return Status::Ok();  // proto_version 1 delivers it between transactions; never inside one
  tracker_.Marker(lsn, CommitTime(*t));
  return MaybeHeartbeat(true);
}

}  // namespace timevault::capture
