// `timevault health` and `timevault plan ...`: thin clients of a running API
// (`timevault serve` or `run`), so operators on the command line go through
// the same roles, tenant scopes and audit trail as every other caller.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "api_client.h"
#include "cli_common.h"

namespace timevault::cli {
namespace {

struct ClientArgs {
  std::string url, token_file, id, name, tenant, level = "basic";
  int64_t rto = 0, rpo = 0, full_every = 0, incremental_every = 0, retention_days = 0;
  bool confirm = false;
  int wait_s = 3600;
};

int Health(const GlobalOptions& g, const ClientArgs& a) {
  int code = kExitOk;
  auto c = ApiClient::Make(g, a.url, a.token_file, &code);
  if (!c) return code;
  ApiResponse r = c->Call("GET", "/v1/health");
  int printed = PrintResponse(r);
  if (printed != kExitOk) return printed;
  // For monitoring: anything but "ok" is a non-zero exit.
  return JsonField(r.body, "status") == "ok" ? kExitOk : kExitFailure;
}

int PlanCreate(const GlobalOptions& g, const ClientArgs& a) {
  int code = kExitOk;
  auto c = ApiClient::Make(g, a.url, a.token_file, &code);
  if (!c) return code;
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("name");
  w.String(a.name.c_str());
  w.Key("tenant");
  w.String(a.tenant.c_str());
  w.Key("rto_minutes");
  w.Int64(a.rto);
  w.Key("rpo_minutes");
  w.Int64(a.rpo);
  w.Key("full_backup_every");
  w.Int64(a.full_every);
  w.Key("incremental_every");
  w.Int64(a.incremental_every);
  w.Key("retention_days");
  w.Int64(a.retention_days);
  w.EndObject();
  return PrintResponse(c->Call("POST", "/v1/plans", sb.GetString()));
}

int PlanTest(const GlobalOptions& g, const ClientArgs& a) {
  int code = kExitOk;
  auto c = ApiClient::Make(g, a.url, a.token_file, &code);
  if (!c) return code;
  ApiResponse r = c->Call("POST", "/v1/plans/" + a.id + "/tests", "{\"level\":\"" + a.level + "\"}");
  if (r.status != 202) return PrintResponse(r);
  const std::string job = JsonField(r.body, "job_id");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(a.wait_s);
  while (std::chrono::steady_clock::now() < deadline) {
    ApiResponse j = c->Call("GET", "/v1/jobs/" + job);
    const std::string state = JsonField(j.body, "state");
    if (j.status != 200 || state == "succeeded" || state == "failed") {
      int printed = PrintResponse(j);
      return printed == kExitOk && state == "succeeded" ? kExitOk : kExitFailure;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  std::fprintf(stderr, "timevault: DR test job %s still running after %d s\n", job.c_str(), a.wait_s);
  return kExitFailure;
}

void AddClientOptions(CLI::App* sub, ClientArgs& a) {
  sub->add_option("--url", a.url, "API base URL (default: from api.listen in the config)");
  sub->add_option("--token-file", a.token_file, "File whose first line is the bearer token");
}

}  // namespace

void RegisterApiClientCommands(CLI::App& app, const GlobalOptions& g, int* exit_code) {
  static ClientArgs a;
  auto* health = app.add_subcommand("health", "Backup, storage, RTO/RPO and capture health (exit 1 unless ok)");
  AddClientOptions(health, a);
  health->callback([&g, exit_code] { *exit_code = Health(g, a); });

  auto* plan = app.add_subcommand("plan", "Disaster-recovery plans and their tests, through the API");
  plan->require_subcommand(1);
  auto* list = plan->add_subcommand("list", "Plans");
  AddClientOptions(list, a);
  list->callback([&g, exit_code] {
    auto c = ApiClient::Make(g, a.url, a.token_file, exit_code);
    if (c) *exit_code = PrintResponse(c->Call("GET", "/v1/plans"));
  });
  auto* show = plan->add_subcommand("show", "One plan");
  AddClientOptions(show, a);
  show->add_option("id", a.id, "Plan id")->required();
  show->callback([&g, exit_code] {
    auto c = ApiClient::Make(g, a.url, a.token_file, exit_code);
    if (c) *exit_code = PrintResponse(c->Call("GET", "/v1/plans/" + a.id));
  });
  auto* create = plan->add_subcommand("create", "Create a plan");
  AddClientOptions(create, a);
  create->add_option("--name", a.name, "Name")->required();
  create->add_option("--tenant", a.tenant, "Tenant, or * for every tenant")->required();
  create->add_option("--rto-minutes", a.rto, "Recovery time objective")->required();
  create->add_option("--rpo-minutes", a.rpo, "Recovery point objective")->required();
  create->add_option("--full-every", a.full_every, "Minutes between full backups")->required();
  create->add_option("--incremental-every", a.incremental_every, "Minutes between incremental backups (0: none)");
  create->add_option("--retention-days", a.retention_days, "Keep backups this long")->required();
  create->callback([&g, exit_code] { *exit_code = PlanCreate(g, a); });
  auto* del = plan->add_subcommand("delete", "Delete a plan");
  AddClientOptions(del, a);
  del->add_option("id", a.id, "Plan id")->required();
  del->add_flag("--confirm", a.confirm, "Really delete it");
  del->callback([&g, exit_code] {
    if (!a.confirm) {
      std::fprintf(stderr, "This would delete DR plan %s.\nNothing was changed: add --confirm to do it.\n",
                   a.id.c_str());
      *exit_code = kExitUsage;
      return;
    }
    auto c = ApiClient::Make(g, a.url, a.token_file, exit_code);
    if (c) *exit_code = PrintResponse(c->Call("DELETE", "/v1/plans/" + a.id, "{\"confirm\":true}"));
  });
  auto* test = plan->add_subcommand("test", "Run a DR test of a plan and wait for its report");
  AddClientOptions(test, a);
  test->add_option("id", a.id, "Plan id")->required();
  test->add_option("--level", a.level, "basic | full | deep");
  test->add_option("--wait", a.wait_s, "Seconds to wait for the report (default 3600)");
  test->callback([&g, exit_code] { *exit_code = PlanTest(g, a); });
}

}  // namespace timevault::cli
