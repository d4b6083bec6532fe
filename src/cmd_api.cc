// API commands: serve, run, plan, health, audit.
#include "cli_common.h"

namespace timevault::cli {

void RegisterApiCommands(CLI::App& app, const GlobalOptions& g, int* exit_code) {
  AddPendingCommand(app, g, exit_code, "serve", "Run the operators' HTTP API", "API");
  AddPendingCommand(app, g, exit_code, "run", "Run capture, store and serve in one process", "API");
  AddPendingCommand(app, g, exit_code, "plan", "Disaster-recovery plans and their tests", "API");
  AddPendingCommand(app, g, exit_code, "health", "Backup, storage, RTO/RPO and capture health", "API");
  AddPendingCommand(app, g, exit_code, "audit", "Read and verify the audit trail", "API");
}

}  // namespace timevault::cli
