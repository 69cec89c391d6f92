// The files of a fuzzing seed corpus (tests/fuzz/corpus/<name>/), for unit tests
// that check every seed and past crash still parses or fails cleanly.
#pragma once

#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace vessel::testing {

// (file name, content) of each file of the corpus, sorted by name; empty when the directory is missing.
inline std::vector<std::pair<std::string, std::string>> corpus_files(const std::string& name) {
  std::string dir = std::string(VESSEL_SOURCE_DIR) + "/tests/fuzz/corpus/" + name;
  std::vector<std::pair<std::string, std::string>> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(dir + "/" + e->d_name, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    out.emplace_back(e->d_name, ss.str());
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace vessel::testing
