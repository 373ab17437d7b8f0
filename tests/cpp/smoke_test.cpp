#include <smartfunnel/smartfunnel.hpp>

#include <gtest/gtest.h>

TEST(version, matches_cmake_project) {
  EXPECT_STREQ(smartfunnel::version_string, SMARTFUNNEL_VERSION_STRING);
}
