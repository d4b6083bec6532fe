// Gaps (invariant 10; docs/store.md, "Gaps"): GET /v1/gaps lists them,
// POST /v1/gaps/{id}/ack acknowledges one (admins), and health is critical
// while one is not acknowledged.
#include <string>
#include <vector>

#include "server_impl.h"

namespace timevault::api {

using config::Role;

void WriteGapsHealth(ApiState& s, JsonWriter& w, std::vector<std::string>* critical) {
  const auto gaps = s.backends.store->Gaps();
  w.Key("gaps");
  w.StartObject();
  w.Key("recorded");
  w.Uint64(gaps.size());
  w.Key("unacknowledged");
  w.StartArray();
  for (const auto& g : gaps) {
    if (g.acknowledged) continue;
    const std::string d = g.Describe();
    w.String(d.c_str(), static_cast<rapidjson::SizeType>(d.size()));
    critical->push_back("history is missing: " + d + "; reads inside it are refused (POST /v1/gaps/" +
                        std::to_string(g.id) + "/ack once handled)");
  }
  w.EndArray();
  w.EndObject();
}

namespace {

void ListGaps(ApiState& s, Call& c) {
  std::string out = "{\"gaps\":[";
  size_t n = 0;
  for (const auto& g : s.backends.store->Gaps()) out += (n++ == 0 ? "" : ",") + store::Store::GapJson(g);
  out += "]}";
  SendJson(c, 200, out);
}

void AckGap(ApiState& s, Call& c) {
  uint64_t id = 0;
  try {
    id = std::stoull(c.params[0]);
  } catch (const std::exception&) {
    return SendError(c, InvalidArgument("gap id '" + c.params[0] + "' is not a number"));
  }
  Status st = s.backends.store->AcknowledgeGap(id, c.who.name);
  if (!st.ok()) return SendError(c, st);
  for (const auto& g : s.backends.store->Gaps()) {
    if (g.id == id) return SendJson(c, 200, store::Store::GapJson(g));
  }
  SendError(c, NotFound("gap #" + std::to_string(id) + " vanished"));
}

}  // namespace

void AddGapRoutes(ApiState& s, std::vector<Route>& routes) {
  routes.push_back(MakeRoute("GET", "/v1/gaps", Role::kViewer, false, nullptr, [&s](Call& c) { ListGaps(s, c); }));
  routes.push_back(
      MakeRoute("POST", "/v1/gaps/([0-9]{1,19})/ack", Role::kAdmin, true, nullptr, [&s](Call& c) { AckGap(s, c); }));
}

}  // namespace timevault::api
