#include "plans.h"

#include <algorithm>
#include <filesystem>

#include "json_fields.h"
#include "timevault/core/file.h"
#include "timevault/replay/archive.h"

namespace timevault::replay {
namespace {

void WritePlan(JsonWriter& w, const StoredPlan& stored) {
  const PitrPlan& plan = stored.plan;
  w.StartObject();
  w.Key("plan_id");
  w.String(plan.plan_id.c_str());
  w.Key("tenant");
  w.String(plan.tenant.c_str());
  w.Key("tables");
  w.StartArray();
  for (const auto& t : plan.tables) w.String(t.c_str());
  w.EndArray();
  w.Key("target_lsn");
  w.String(plan.target.lsn.ToString().c_str());
  w.Key("target_time");
  w.String(plan.target.time.ToIso().c_str());
  w.Key("ops");
  w.StartObject();
  WriteOperationCounts(w, plan.ops, /*with_total=*/false);
  w.EndObject();
  w.Key("by_table");
  w.StartArray();
  for (const auto& t : plan.by_table) {
    w.StartObject();
    w.Key("table");
    w.String(t.table.c_str());
    WriteOperationCounts(w, t.ops, /*with_total=*/false);
    w.EndObject();
  }
  w.EndArray();
  w.Key("estimated_seconds");
  w.Double(plan.estimated_seconds);
  w.Key("created_at");
  w.String(plan.created_at.ToIso().c_str());
  w.Key("sampled");
  w.StartObject();
  for (const auto& [table, n] : plan.sampled) {
    w.Key(table.c_str());
    w.Uint64(n);
  }
  w.EndObject();
  w.Key("scope");
  w.StartArray();
  for (const auto& t : stored.scope) w.String(t.c_str());
  w.EndArray();
  w.Key("digest");
  w.String(stored.digest.c_str());
  w.Key("target_rows");
  w.Uint64(stored.target_rows);
  if (!stored.executed_by.empty()) {
    w.Key("executed_by");
    w.String(stored.executed_by.c_str());
  }
  w.EndObject();
}

StoredPlan ReadPlan(const rapidjson::Document& d) {
  StoredPlan stored;
  PitrPlan& plan = stored.plan;
  plan.plan_id = Str(d, "plan_id");
  plan.tenant = Str(d, "tenant");
  plan.tables = Strings(d, "tables");
  plan.target = store::Point{LsnField(d, "target_lsn"), TimeField(d, "target_time")};
  if (d.HasMember("ops")) plan.ops = ReadOps(d["ops"]);
  if (d.HasMember("by_table") && d["by_table"].IsArray()) {
    for (const auto& t : d["by_table"].GetArray()) plan.by_table.push_back({Str(t, "table"), ReadOps(t)});
  }
  if (d.HasMember("estimated_seconds") && d["estimated_seconds"].IsNumber()) {
    plan.estimated_seconds = d["estimated_seconds"].GetDouble();
  }
  plan.created_at = TimeField(d, "created_at");
  if (auto it = d.FindMember("sampled"); it != d.MemberEnd() && it->value.IsObject()) {
    for (const auto& m : it->value.GetObject()) {
      if (m.value.IsUint64()) plan.sampled[m.name.GetString()] = m.value.GetUint64();
    }
  }
  stored.scope = Strings(d, "scope");
  stored.digest = Str(d, "digest");
  stored.target_rows = U64(d, "target_rows");
  stored.executed_by = Str(d, "executed_by");
  return stored;
}

}  // namespace

Status PlanStore::Init() {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return Internal("cannot create " + dir_ + ": " + ec.message());
  return Status::Ok();
}

Status PlanStore::Save(const StoredPlan& plan) {
  return WriteFileAtomically(PlanPath(plan.plan.plan_id), ToJson([&](JsonWriter& w) { WritePlan(w, plan); }));
}

Result<StoredPlan> PlanStore::Load(const std::string& plan_id) {
  if (!ValidId(plan_id, 'p')) return NotFound("no plan " + plan_id + " (plan ids come from a preview)");
  auto text = ReadWholeFile(PlanPath(plan_id));
  if (!text.ok()) return NotFound("no plan " + plan_id + " (plan ids come from a preview)");
  rapidjson::Document doc;
  doc.Parse(text->c_str());
  if (doc.HasParseError() || !doc.IsObject()) return Corruption("plan " + plan_id + " is damaged");
  return ReadPlan(doc);
}

Result<std::map<std::string, uint64_t>> PlanStore::SaveSample(Applier& applier, const std::string& plan_id,
                                                              const TenantId& tenant) {
  TV_ASSIGN_OR_RETURN(auto archive, ArchiveWriter::Create(SamplePath(plan_id), plan_id, *keys_, tenant.str()));
  std::map<std::string, std::string> files;
  std::map<std::string, uint64_t> counts;
  TV_RETURN_IF_ERROR(applier.SampleChanges(kPreviewSampleRows, [&](const std::string& table, std::string change) {
    auto [it, added] = files.emplace(table, "t" + std::to_string(files.size()));
    ++counts[table];
    return archive->Add(it->second, change);
  }));
  std::string meta = ToJson([&](JsonWriter& w) {
    w.StartObject();
    w.Key("kind");
    w.String("plan-sample");
    w.Key("plan_id");
    w.String(plan_id.c_str());
    w.Key("tables");
    w.StartObject();
    for (const auto& [table, file] : files) {
      w.Key(table.c_str());
      w.StartObject();
      w.Key("file");
      w.String(file.c_str());
      w.Key("rows");
      w.Uint64(counts[table]);
      w.EndObject();
    }
    w.EndObject();
    w.EndObject();
  });
  TV_RETURN_IF_ERROR(archive->Finish(meta).status());
  return counts;
}

Result<SamplePage> PlanStore::Sample(const PitrPlan& plan, const std::string& table, uint64_t offset, uint64_t limit) {
  const std::string& plan_id = plan.plan_id;
  SamplePage page;
  page.plan_id = plan_id;
  page.table = table;
  auto ops = std::find_if(plan.by_table.begin(), plan.by_table.end(),
                          [&](const TableOperations& t) { return t.table == table; });
  if (ops == plan.by_table.end()) return NotFound("plan " + plan_id + " changes no rows of table " + table);
  page.operations = ops->ops.total();
  TV_ASSIGN_OR_RETURN(auto reader, ArchiveReader::Open(SamplePath(plan_id), *keys_));
  rapidjson::Document doc;
  doc.Parse(reader->manifest_json().c_str());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("tables") || !doc["tables"].IsObject()) {
    return Corruption("the row sample of plan " + plan_id + ": manifest lacks its tables");
  }
  auto entry = doc["tables"].FindMember(table.c_str());
  if (entry == doc["tables"].MemberEnd()) return page;  // nothing sampled (a plan made before samples)
  page.sampled = U64(entry->value, "rows");
  uint64_t at = 0;
  TV_RETURN_IF_ERROR(reader->Read(Str(entry->value, "file"), [&](std::string_view change) {
    if (at >= offset && page.changes.size() < limit) page.changes.emplace_back(change);
    ++at;
    return page.changes.size() < limit || at <= offset;
  }));
  if (offset + page.changes.size() < page.sampled && !page.changes.empty()) page.next = offset + page.changes.size();
  return page;
}

void PlanStore::Stage(const std::string& plan_id, std::shared_ptr<const StagedTarget> target) {
  if (!target) return;
  const size_t bytes = target->bytes();
  if (bytes > kStagedTargetBytes) return;
  std::lock_guard<std::mutex> lock(staged_mu_);
  const int64_t now = SystemClock().Now().micros();
  size_t total = bytes;
  for (auto it = staged_.begin(); it != staged_.end();) {
    if (now - it->second.staged_at > kPlanLifetimeMicros) {
      it = staged_.erase(it);
    } else {
      total += it->second.target->bytes();
      ++it;
    }
  }
  while (total > kStagedTargetBytes && !staged_.empty()) {
    auto oldest = std::min_element(staged_.begin(), staged_.end(),
                                   [](const auto& a, const auto& b) { return a.second.order < b.second.order; });
    total -= oldest->second.target->bytes();
    staged_.erase(oldest);
  }
  staged_[plan_id] = StagedEntry{std::move(target), now, ++staged_order_};
}

std::shared_ptr<const StagedTarget> PlanStore::Staged(const std::string& plan_id) {
  std::lock_guard<std::mutex> lock(staged_mu_);
  auto it = staged_.find(plan_id);
  return it == staged_.end() ? nullptr : it->second.target;
}

void PlanStore::Unstage(const std::string& plan_id) {
  std::lock_guard<std::mutex> lock(staged_mu_);
  staged_.erase(plan_id);
}

}  // namespace timevault::replay
