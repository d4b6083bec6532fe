// `timevault backup full|incremental|list|verify|expire`.
#include "cli_common.h"

namespace timevault::cli {

void RegisterBackupCommands(CLI::App& app, const GlobalOptions& g, int* exit_code) {
  AddPendingCommand(app, g, exit_code, "backup", "Full and incremental backups: full|incremental|list|verify|expire",
                    "Replay");
}

}  // namespace timevault::cli
