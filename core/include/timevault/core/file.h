// Small POSIX file helpers shared by the components that write durable files
// (the master key reader, archives, plans, jobs): an owned descriptor, full
// writes, fsync, and the write-to-temporary-then-rename replacement.
#pragma once

#include <string>
#include <string_view>

#include "timevault/core/status.h"

namespace timevault {

// An owned file descriptor, closed on destruction.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const { return fd_; }

 private:
  int fd_;
};

// Writes all of `data` (retrying short writes and EINTR); `path` names the
// file in the error.
Status WriteAll(int fd, std::string_view data, const std::string& path);

// fsync of a file or a directory.
Status FsyncPath(const std::string& path, bool directory);

// Replaces `path` with `content` so that a crash leaves either the old or the
// new file, never a torn one: writes "<path>.tmp", fsyncs it, renames it over
// `path` and fsyncs the directory.
Status WriteFileAtomically(const std::string& path, std::string_view content);

}  // namespace timevault
