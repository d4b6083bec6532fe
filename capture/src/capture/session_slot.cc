// Session: slot loss and the marker of a full snapshot (docs/capture.md,
// "Slot loss and re-snapshots"). Kept apart from session.cc's snapshot and
// streaming code.
//
// What capture last streamed from is in Kafka itself: every heartbeat names
// the slot, the cluster's system identifier and timeline, and the LSN up to
// which Kafka holds everything. A new run compares the slot it finds with
// the last heartbeat; a lost or replaced slot means the changes between that
// LSN and a new slot's consistent point were never captured. Capture says so
// loudly and, with on_slot_loss = "resnapshot", takes a new full snapshot
// whose closing heartbeat carries the `timevault_snapshot` marker: the store
// then ends the rows absent from the snapshot and records the gap.
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include "capture/session.h"

namespace timevault::capture {
namespace {

constexpr int kMarkerFlushTimeoutMs = 60000;

struct PreviousRun {
  Lsn lsn;
  std::optional<HeartbeatSource> source;
};

// The last heartbeat's position and source (JsonConverter's envelope with
// schemas.enable or the bare value).
std::optional<PreviousRun> ParsePrevious(const std::string& value) {
  rapidjson::Document doc;
  doc.Parse(value.c_str(), value.size());
  if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
  const rapidjson::Value* v = &doc;
  if (doc.HasMember("payload") && doc["payload"].IsObject()) v = &doc["payload"];
  if (!v->HasMember("lsn") || !(*v)["lsn"].IsInt64()) return std::nullopt;
  PreviousRun run;
  run.lsn = Lsn(static_cast<uint64_t>((*v)["lsn"].GetInt64()));
  if (v->HasMember("timevault_source") && (*v)["timevault_source"].IsObject()) {
    const auto& s = (*v)["timevault_source"];
    if (s.HasMember("slot") && s["slot"].IsString() && s.HasMember("system_id") && s["system_id"].IsString() &&
        s.HasMember("timeline") && s["timeline"].IsInt64()) {
      run.source = HeartbeatSource{s["slot"].GetString(), s["system_id"].GetString(), s["timeline"].GetInt64()};
    }
  }
  return run;
}

}  // namespace

const HeartbeatSource* Session::Source() { return source_ ? &*source_ : nullptr; }

Status Session::CheckSlotLoss(SlotState* state) {
  const auto& slot = config_.postgres.slot;
  TV_ASSIGN_OR_RETURN(SystemIdentity id, replication_->IdentifySystem());
  source_ = HeartbeatSource{slot, id.system_id, id.timeline};
  TV_ASSIGN_OR_RETURN(auto last, sink_->LastMessage(heartbeat_topic_, 0));
  std::optional<PreviousRun> previous = last ? ParsePrevious(*last) : std::nullopt;
  std::optional<std::string> cause;
  if (state->exists && state->wal_status == "lost") {
    cause = "replication slot '" + slot + "' was invalidated (wal_status = lost: max_slot_wal_keep_size removed WAL " +
            "it still needed)";
  } else if (previous && previous->source && previous->source->slot == slot) {
    const HeartbeatSource& was = *previous->source;
    if (was.system_id != id.system_id) {
      if (id.xlogpos <= previous->lsn) {
        return FailedPrecondition("capture streamed from system " + was.system_id + " up to " +
                                  previous->lsn.ToString() + "; this server is system " + id.system_id + " at WAL " +
                                  id.xlogpos.ToString() +
                                  ", behind it: the store cannot order its changes after the old ones. Start a new "
                                  "store (and topic prefix) for this server");
      }
      cause = "the database is another cluster (system identifier " + id.system_id + ", was " + was.system_id + ")";
    } else if (!state->exists) {
      cause = "replication slot '" + slot + "' is missing (capture had streamed from it up to " +
              previous->lsn.ToString() + ")";
    } else if (was.timeline != id.timeline && state->confirmed_flush < previous->lsn) {
      cause = "replication slot '" + slot + "' on timeline " + std::to_string(id.timeline) + " is at " +
              state->confirmed_flush.ToString() + ", behind " + previous->lsn.ToString() +
              ", what capture had produced on timeline " + std::to_string(was.timeline) + " (a failover)";
    } else if (state->confirmed_flush < previous->lsn) {
      // Same cluster and timeline: Postgres restored the slot from its last
      // checkpoint after a crash. It re-sends from there (duplicates the
      // store ignores); nothing is lost.
      spdlog::warn(
          "capture: slot {} confirmed {} although Kafka holds everything up to {}: Postgres restarted and "
          "rewound it; the changes in between are sent again",
          slot, state->confirmed_flush.ToString(), previous->lsn.ToString());
    }
  }
  if (!cause) return Status::Ok();
  spdlog::critical("capture: SLOT LOST: {}. The changes made since capture last confirmed were never captured.",
                   *cause);
  if (config_.postgres.on_slot_loss == config::SlotLossAction::kStop) {
    return FailedPrecondition(*cause +
                              "; postgres.on_slot_loss = \"stop\": not re-snapshotting. Drop the slot and "
                              "set on_slot_loss = \"resnapshot\" to take a new full snapshot (the store records the "
                              "gap)");
  }
  if (config_.postgres.snapshot_mode == config::SnapshotMode::kNoData) {
    return FailedPrecondition(*cause +
                              "; snapshot_mode = no_data cannot re-snapshot, so history after the loss "
                              "would not be exact. Use snapshot_mode = initial");
  }
  spdlog::critical(
      "capture: postgres.on_slot_loss = \"resnapshot\": taking a new full snapshot; the store records "
      "the gap and refuses points inside it");
  if (state->exists) {
    if (state->active) return Unavailable("replication slot '" + slot + "' is in use by another process");
    TV_RETURN_IF_ERROR(replication_->DropSlot(slot));
    state->exists = false;
  }
  slot_loss_ = *cause;
  metrics_->slot_losses.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

Status Session::NoteSnapshotTime() {
  TV_ASSIGN_OR_RETURN(auto res, catalog_.Exec("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint"));
  snapshot_time_ = CommitTime(std::stoll(std::string(res.Get(0, 0))));
  return Status::Ok();
}

Status Session::AnnounceSnapshot(const CreatedSlot& created) {
  SnapshotMarker marker;
  TV_ASSIGN_OR_RETURN(auto tables,
                      catalog_.ExecParams("SELECT schemaname || '.' || tablename FROM pg_publication_tables "
                                          "WHERE pubname = $1 ORDER BY 1",
                                          {config_.postgres.publication}));
  for (int i = 0; i < tables.rows(); ++i) marker.tables.emplace_back(tables.GetString(i, 0));
  TV_ASSIGN_OR_RETURN(auto all, catalog_.ExecParams("SELECT puballtables FROM pg_publication WHERE pubname = $1",
                                                    {config_.postgres.publication}));
  marker.all_tables = all.rows() == 1 && all.GetString(0, 0) == "t";
  marker.gap = slot_loss_.has_value();
  marker.cause = slot_loss_.value_or("snapshot on new slot " + config_.postgres.slot);
  TV_RETURN_IF_ERROR(encoder_.EncodeHeartbeatKey(config_.kafka.topic_prefix, &key_buf_));
  TV_RETURN_IF_ERROR(encoder_.EncodeHeartbeat(SystemClock().Now(), created.consistent_point, snapshot_time_,
                                              sink_->acked_offsets(), &value_buf_, Source(), &marker));
  TV_RETURN_IF_ERROR(sink_->Produce(heartbeat_topic_, 0, key_buf_, value_buf_, 0));
  TV_RETURN_IF_ERROR(sink_->Flush(kMarkerFlushTimeoutMs));
  spdlog::info("capture: full snapshot at {} announced ({} tables{})", created.consistent_point.ToString(),
               marker.tables.size(), marker.gap ? ", after a slot loss: the store records the gap" : "");
  return Status::Ok();
}

}  // namespace timevault::capture
