// Replay commands: pitr, snapshots, rollback, restore, state, history.
#include "cli_common.h"

namespace timevault::cli {

void RegisterReplayCommands(CLI::App& app, const GlobalOptions& g, int* exit_code) {
  AddPendingCommand(app, g, exit_code, "restore", "Restore a tenant from a backup (diff and apply, snapshot first)",
                    "Replay");
  AddPendingCommand(app, g, exit_code, "pitr", "Point-in-time recovery of a tenant: preview|execute", "Replay");
  AddPendingCommand(app, g, exit_code, "snapshots", "List and inspect the snapshots taken before every apply",
                    "Replay");
  AddPendingCommand(app, g, exit_code, "rollback", "Put a snapshot back (takes its own snapshot first)", "Replay");
  AddPendingCommand(app, g, exit_code, "state", "Write a tenant's rows as of a time (jsonl or csv)", "Replay");
  AddPendingCommand(app, g, exit_code, "history", "Write a tenant's change events in commit order", "Replay");
}

}  // namespace timevault::cli
