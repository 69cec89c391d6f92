// libFuzzer target: config.json text into the runtime-spec parser (with its
// seccomp and resources sections). Any input must give a Spec or an Error:
// no crash, no exception, no hang.
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DVESSEL_FUZZ=ON && make -C build-fuzz config_fuzz
//   build-fuzz/config_fuzz tests/fuzz/corpus/config -max_total_time=30
#include <cstdint>
#include <string>

#include "oci/spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto spec = vessel::oci::parse_spec(text);
  if (spec) {
    // Exercise what create reads from a parsed spec.
    (void)spec->linux_.find_namespace(vessel::oci::NamespaceType::kUser);
    if (spec->linux_.seccomp) (void)spec->linux_.seccomp->uses_notify();
  }
  return 0;
}
