// The command line: builds the CLI11 app with every subcommand and runs the one
// chosen. Exit codes: 0 success, 1 failure, 2 bad usage or bad config.
#pragma once

namespace timevault::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

int Main(int argc, char** argv);

}  // namespace timevault::cli
