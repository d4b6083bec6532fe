// A child process for tests: the real `timevault` binary (or any command),
// started with fork/exec, output to a log file, stopped with SIGTERM or killed
// with SIGKILL like a crash. Destruction kills it if still running.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace timevault::testing {

class Process {
 public:
  Process() = default;
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Starts argv[0] with the arguments; stdout and stderr append to `log_path`.
  bool Start(const std::vector<std::string>& argv, const std::string& log_path);
  bool running();
  pid_t pid() const { return pid_; }
  // SIGKILL and reap: the crash a fault test needs.
  void Kill();
  // SIGTERM, then wait up to `timeout_s`; returns the exit code, or -1 on timeout (then killed).
  int Stop(int timeout_s = 60);
  // Waits for exit up to `timeout_s`; returns the exit code or -1.
  int Wait(int timeout_s);
  // Peak resident set size so far (VmHWM, kB), 0 if unknown.
  long PeakRssKb() const;
  const std::string& log_path() const { return log_path_; }
  std::string ReadLog() const;

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::string log_path_;
};

// A temporary directory removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& content);

}  // namespace timevault::testing
