#include "timevault/core/json.h"

#include <gtest/gtest.h>

#include <string>

namespace timevault {
namespace {

TEST(Json, ParsesAnObject) {
  rapidjson::Document d;
  ASSERT_TRUE(json::Parse(R"({"a":[1,{"b":"c"}],"n":null})", &d).ok());
  EXPECT_EQ(std::string(d["a"][1]["b"].GetString()), "c");
}

TEST(Json, RefusesDeepNestingWithoutRecursing) {
  // A million levels: the recursive parser overflowed the stack on this.
  std::string deep(1 << 20, '[');
  rapidjson::Document d;
  Status st = json::Parse(deep, &d);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("nested deeper than 64 levels"), std::string::npos) << st.message();
  EXPECT_TRUE(d.IsNull());
  std::string closed = std::string(1000, '[') + std::string(1000, ']');
  EXPECT_FALSE(json::IsValid(closed));
  EXPECT_TRUE(json::IsValid(closed, 1000));
  std::string objects;
  for (int i = 0; i < 65; ++i) objects += "{\"k\":";
  objects += "1" + std::string(65, '}');
  EXPECT_FALSE(json::IsValid(objects));
  EXPECT_TRUE(json::IsValid(objects, 65));
}

TEST(Json, RefusesTrailingBytesBadUtf8AndEmbeddedNul) {
  EXPECT_FALSE(json::IsValid("{} {}"));
  EXPECT_FALSE(json::IsValid("\"\xff\""));
  EXPECT_FALSE(json::IsValid(std::string("{}\0{}", 5)));
  EXPECT_FALSE(json::IsValid(""));
  rapidjson::Document d;
  Status st = json::Parse("{\"a\":", &d);
  EXPECT_NE(st.message().find("at offset 5"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace timevault
