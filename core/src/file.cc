#include "timevault/core/file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace timevault {
namespace {

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

}  // namespace

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Internal(Errno("writing", path));
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status FsyncPath(const std::string& path, bool directory) {
  Fd fd(::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC));
  if (fd.get() < 0) return Internal(Errno("opening", path));
  if (::fsync(fd.get()) != 0) return Internal(Errno("fsync of", path));
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& path, std::string_view content) {
  const std::string tmp = path + ".tmp";
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (fd.get() < 0) return Internal(Errno("creating", tmp));
    TV_RETURN_IF_ERROR(WriteAll(fd.get(), content, tmp));
    if (::fsync(fd.get()) != 0) return Internal(Errno("fsync of", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return Internal(Errno("renaming " + tmp + " to", path));
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return FsyncPath(parent.empty() ? "." : parent.string(), true);
}

}  // namespace timevault
