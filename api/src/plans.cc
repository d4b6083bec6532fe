#include "timevault/api/plans.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "json_util.h"
#include "timevault/core/file.h"
#include "timevault/core/json.h"

namespace timevault::api {
namespace {

int64_t ReadInt(const rapidjson::Value& d, const char* key) {
  return d.HasMember(key) && d[key].IsInt64() ? d[key].GetInt64() : 0;
}

std::string ReadStr(const rapidjson::Value& d, const char* key) {
  return d.HasMember(key) && d[key].IsString() ? d[key].GetString() : "";
}

DrPlan ParsePlan(const rapidjson::Value& d) {
  DrPlan p;
  p.id = ReadStr(d, "id");
  p.name = ReadStr(d, "name");
  p.tenant = ReadStr(d, "tenant");
  p.rto_minutes = ReadInt(d, "rto_minutes");
  p.rpo_minutes = ReadInt(d, "rpo_minutes");
  p.full_backup_every = ReadInt(d, "full_backup_every");
  p.incremental_every = ReadInt(d, "incremental_every");
  p.retention_days = ReadInt(d, "retention_days");
  p.created_at = ReadTime(d, "created_at");
  p.updated_at = ReadTime(d, "updated_at");
  p.last_full_at = ReadTime(d, "last_full_backup_at");
  p.last_incremental_at = ReadTime(d, "last_incremental_backup_at");
  if (d.HasMember("last_test") && d["last_test"].IsObject()) {
    const auto& t = d["last_test"];
    DrTestSummary s;
    s.job_id = ReadStr(t, "job_id");
    s.level = ReadStr(t, "level");
    s.passed = t.HasMember("passed") && t["passed"].IsBool() && t["passed"].GetBool();
    if (t.HasMember("restore_seconds") && t["restore_seconds"].IsNumber()) {
      s.restore_seconds = t["restore_seconds"].GetDouble();
    }
    s.finished_at = ReadTime(t, "finished_at");
    p.last_test = s;
  }
  return p;
}

void WritePlan(JsonWriter& w, const DrPlan& p) {
  w.StartObject();
  w.Key("id");
  WriteString(w, p.id);
  w.Key("name");
  WriteString(w, p.name);
  w.Key("tenant");
  WriteString(w, p.tenant);
  w.Key("rto_minutes");
  w.Int64(p.rto_minutes);
  w.Key("rpo_minutes");
  w.Int64(p.rpo_minutes);
  w.Key("full_backup_every");
  w.Int64(p.full_backup_every);
  w.Key("incremental_every");
  w.Int64(p.incremental_every);
  w.Key("retention_days");
  w.Int64(p.retention_days);
  WriteTime(w, "created_at", p.created_at);
  WriteTime(w, "updated_at", p.updated_at);
  WriteTime(w, "last_full_backup_at", p.last_full_at);
  WriteTime(w, "last_incremental_backup_at", p.last_incremental_at);
  w.Key("last_test");
  if (p.last_test) {
    const auto& t = *p.last_test;
    w.StartObject();
    w.Key("job_id");
    WriteString(w, t.job_id);
    w.Key("level");
    WriteString(w, t.level);
    w.Key("passed");
    w.Bool(t.passed);
    w.Key("restore_seconds");
    if (t.restore_seconds) {
      w.Double(*t.restore_seconds);
    } else {
      w.Null();
    }
    WriteTime(w, "finished_at", t.finished_at);
    w.EndObject();
  } else {
    w.Null();
  }
  w.EndObject();
}

}  // namespace

std::string PlanJson(const DrPlan& plan) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WritePlan(w, plan);
  return std::string(buf.GetString(), buf.GetSize());
}

Result<std::unique_ptr<PlanStore>> PlanStore::Open(const std::string& state_dir) {
  std::unique_ptr<PlanStore> s(new PlanStore(state_dir + "/plans.json"));
  std::ifstream in(s->path_);
  if (!in) return s;  // no plans yet
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  rapidjson::Document d;
  if (!json::Parse(text, &d).ok() || !d.IsObject() || !d.HasMember("plans") || !d["plans"].IsArray()) {
    return Corruption("plans: " + s->path_ + " is not a plans file (expected {\"plans\": [...]})");
  }
  for (const auto& p : d["plans"].GetArray()) {
    if (p.IsObject()) s->plans_.push_back(ParsePlan(p));
  }
  return s;
}

Status PlanStore::SaveLocked() {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("plans");
  w.StartArray();
  for (const auto& p : plans_) WritePlan(w, p);
  w.EndArray();
  w.EndObject();
  if (Status s = WriteFileAtomically(path_, std::string(buf.GetString()) + "\n"); !s.ok()) {
    return Internal("plans: cannot replace " + path_ + ": " + s.message());
  }
  return Status::Ok();
}

std::vector<DrPlan> PlanStore::List() {
  std::lock_guard lock(mu_);
  return plans_;
}

Result<DrPlan> PlanStore::Get(const std::string& id) {
  std::lock_guard lock(mu_);
  for (const auto& p : plans_) {
    if (p.id == id) return p;
  }
  return NotFound("no DR plan with id '" + id + "'");
}

Result<DrPlan> PlanStore::Create(DrPlan plan, CommitTime now) {
  std::lock_guard lock(mu_);
  for (const auto& p : plans_) {
    if (p.name == plan.name) return AlreadyExists("a DR plan named '" + plan.name + "' exists already (" + p.id + ")");
  }
  if (plan.id.empty()) plan.id = "plan-" + RandomHex(6);
  plan.created_at = plan.updated_at = now;
  plans_.push_back(plan);
  if (Status s = SaveLocked(); !s.ok()) {
    plans_.pop_back();
    return s;
  }
  return plan;
}

Result<DrPlan> PlanStore::Update(const std::string& id, const DrPlan& f, CommitTime now) {
  std::lock_guard lock(mu_);
  auto it = std::find_if(plans_.begin(), plans_.end(), [&](const DrPlan& p) { return p.id == id; });
  if (it == plans_.end()) return NotFound("no DR plan with id '" + id + "'");
  for (const auto& p : plans_) {
    if (p.id != id && p.name == f.name)
      return AlreadyExists("a DR plan named '" + f.name + "' exists already (" + p.id + ")");
  }
  DrPlan old = *it;
  it->name = f.name;
  it->tenant = f.tenant;
  it->rto_minutes = f.rto_minutes;
  it->rpo_minutes = f.rpo_minutes;
  it->full_backup_every = f.full_backup_every;
  it->incremental_every = f.incremental_every;
  it->retention_days = f.retention_days;
  it->updated_at = now;
  DrPlan updated = *it;
  if (Status s = SaveLocked(); !s.ok()) {
    *it = old;
    return s;
  }
  return updated;
}

Status PlanStore::Delete(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = std::find_if(plans_.begin(), plans_.end(), [&](const DrPlan& p) { return p.id == id; });
  if (it == plans_.end()) return NotFound("no DR plan with id '" + id + "'");
  DrPlan old = *it;
  auto pos = plans_.erase(it);
  if (Status s = SaveLocked(); !s.ok()) {
    plans_.insert(pos, old);
    return s;
  }
  return Status::Ok();
}

Status PlanStore::Mutate(const std::string& id, const std::function<void(DrPlan&)>& change) {
  std::lock_guard lock(mu_);
  for (auto& p : plans_) {
    if (p.id != id) continue;
    change(p);
    return SaveLocked();
  }
  return NotFound("no DR plan with id '" + id + "'");
}

std::optional<DrTestLevel> ParseDrTestLevel(std::string_view s) {
  if (s == "basic") return DrTestLevel::kBasic;
  if (s == "full") return DrTestLevel::kFull;
  if (s == "deep") return DrTestLevel::kDeep;
  return std::nullopt;
}

std::string_view DrTestLevelName(DrTestLevel level) {
  switch (level) {
    case DrTestLevel::kBasic: return "basic";
    case DrTestLevel::kFull: return "full";
    case DrTestLevel::kDeep: return "deep";
  }
  return "basic";
}

}  // namespace timevault::api
