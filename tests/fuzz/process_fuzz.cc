// libFuzzer target: the JSON files of `exec --process` (a runtime-spec process)
// and `update -r` (linux.resources). Any input must give a value or an Error:
// no crash, no exception, no hang.
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DVESSEL_FUZZ=ON && make -C build-fuzz process_fuzz
//   build-fuzz/process_fuzz tests/fuzz/corpus/process -max_total_time=30
#include <cstdint>
#include <string>

#include "oci/json_reader.h"
#include "oci/resources.h"
#include "oci/spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto j = vessel::oci::parse_json(text, "fuzz");
  if (!j) return 0;
  if (auto p = vessel::oci::parse_process(*j, "process")) {
    // What exec reads from a parsed process.
    for (auto& e : p->env) (void)e.find('=');
    (void)p->args.front();
  }
  if (auto r = vessel::oci::parse_resources(*j, "--resources")) (void)vessel::oci::to_json(*r);
  return 0;
}
