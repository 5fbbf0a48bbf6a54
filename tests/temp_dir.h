// A fresh directory under /tmp for one test (the caller removes it).
#ifndef TASKQ_TESTS_TEMP_DIR_H_
#define TASKQ_TESTS_TEMP_DIR_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

namespace taskq::testing {

// "/tmp/PREFIX-XXXXXX" made unique; empty (and the test failed) if it cannot be made.
inline std::string MakeTempDir(const std::string& prefix) {
  std::string path = "/tmp/" + prefix + "-XXXXXX";
  if (mkdtemp(path.data()) == nullptr) {
    ADD_FAILURE() << "cannot make " << path;
    return "";
  }
  return path;
}

}  // namespace taskq::testing

#endif  // TASKQ_TESTS_TEMP_DIR_H_
