#include <gtest/gtest.h>

#include "timevault/core/kafka.h"

namespace timevault {
namespace {

// A refused setting's value may be a secret (a misspelt sasl.password):
// the error, which reaches the log, names the key but never the value.
TEST(KafkaConf, ARefusedValueIsNotRepeated) {
  kafka::Conf conf;
  Status bad_value = conf.Set("linger.ms", "hunter2-secret");
  ASSERT_FALSE(bad_value.ok());
  EXPECT_NE(bad_value.message().find("linger.ms"), std::string::npos) << bad_value.message();
  EXPECT_EQ(bad_value.message().find("hunter2-secret"), std::string::npos) << bad_value.message();
  Status unknown = conf.Set("sasl.passwrd", "hunter2-secret");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.message().find("sasl.passwrd"), std::string::npos) << unknown.message();
  EXPECT_EQ(unknown.message().find("hunter2-secret"), std::string::npos) << unknown.message();
}

}  // namespace
}  // namespace timevault
