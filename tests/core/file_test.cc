#include "timevault/core/file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/process.h"

namespace timevault {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(File, WriteFileAtomicallyReplacesWholeAndLeavesNoTemporary) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/plans.json";
  ASSERT_TRUE(WriteFileAtomically(path, "first version, longer than the second").ok());
  EXPECT_EQ(Slurp(path), "first version, longer than the second");
  ASSERT_TRUE(WriteFileAtomically(path, std::string("second\0binary", 13)).ok());
  EXPECT_EQ(Slurp(path), std::string("second\0binary", 13));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(File, WriteFileAtomicallyNamesThePathItCannotWrite) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/missing/dir/plans.json";
  Status s = WriteFileAtomically(path, "x");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(path + ".tmp"), std::string::npos) << s.ToString();
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(File, FsyncPathOfAMissingFileIsAnError) {
  Status s = FsyncPath("/nonexistent/timevault", false);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent/timevault"), std::string::npos);
}

}  // namespace
}  // namespace timevault
