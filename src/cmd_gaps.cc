// `timevault gaps list|ack`: the intervals of history the store cannot vouch
// for (invariant 10; docs/store.md, "Gaps"). Both open the store read-only,
// so they run beside `timevault store`.
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>

#include "cli_common.h"

namespace timevault::cli {
namespace {

int WithReadOnlyStore(const GlobalOptions& g, const char* name, const std::function<Status(store::Store&)>& run) {
  int code = kExitOk;
  auto cfg = LoadConfig(g, &code);
  if (!cfg) return code;
  auto opened = OpenStore(*cfg, true);
  Status st = opened.ok() ? run(**opened) : opened.status();
  if (!st.ok()) {
    std::fprintf(stderr, "timevault gaps %s: %s\n", name, st.ToString().c_str());
    return st.code() == StatusCode::kNotFound ? kExitUsage : kExitFailure;
  }
  return kExitOk;
}

// One JSON line per gap, oldest first; a summary on stderr.
int RunGapsList(const GlobalOptions& g) {
  return WithReadOnlyStore(g, "list", [](store::Store& s) {
    size_t open = 0;
    const auto gaps = s.Gaps();
    for (const auto& gap : gaps) {
      std::printf("%s\n", store::Store::GapJson(gap).c_str());
      if (!gap.acknowledged) ++open;
    }
    std::fprintf(stderr, "%zu gap(s), %zu not acknowledged\n", gaps.size(), open);
    return Status::Ok();
  });
}

int RunGapsAck(const GlobalOptions& g, uint64_t id, const std::string& by) {
  return WithReadOnlyStore(g, "ack", [&](store::Store& s) -> Status {
    TV_RETURN_IF_ERROR(s.AcknowledgeGap(id, by));
    std::printf("gap #%llu acknowledged: health no longer names it; points inside it stay refused\n",
                static_cast<unsigned long long>(id));
    return Status::Ok();
  });
}

}  // namespace

void RegisterGapsCommands(CLI::App& app, const GlobalOptions& g, int* exit_code) {
  auto* gaps = app.add_subcommand("gaps", "Intervals of history the store cannot vouch for (lost slots, ...)");
  gaps->require_subcommand(1);
  gaps->add_subcommand("list", "List every recorded gap as JSON lines")->callback([&g, exit_code] {
    *exit_code = RunGapsList(g);
  });
  auto* ack = gaps->add_subcommand("ack", "Acknowledge a gap: health stops naming it");
  auto id = std::make_shared<uint64_t>(0);
  auto by = std::make_shared<std::string>();
  ack->add_option("id", *id, "The gap's id (gaps list)")->required();
  ack->add_option("--by", *by, "Who acknowledges it (default $USER)");
  ack->callback([&g, exit_code, id, by] {
    std::string who = *by;
    if (who.empty() && std::getenv("USER") != nullptr) who = std::getenv("USER");
    *exit_code = RunGapsAck(g, *id, who);
  });
}

}  // namespace timevault::cli
