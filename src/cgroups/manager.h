// TEMPORARY minimal cgroup placement (replaced by the cgroups branch).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "oci/json_reader.h"

namespace vessel::cgroups {

struct Options {
  std::string cgroups_path;
  std::string container_id;
  std::string root = "/sys/fs/cgroup";
};

class Manager {
 public:
  virtual ~Manager() = default;
  static Result<std::unique_ptr<Manager>> create(const Options&);
  static Result<std::unique_ptr<Manager>> load(const std::string& saved);
  virtual std::string save() const = 0;
  virtual Status add_process(pid_t pid) = 0;
  virtual Result<std::vector<pid_t>> pids() const = 0;
  virtual Status kill_all(int sig) = 0;
  virtual Status destroy() = 0;
  virtual Result<bool> frozen() const = 0;
  struct Mount {
    std::string mountpoint, fstype, options, path;
  };
  virtual std::vector<Mount> mounts() const = 0;
};

}  // namespace vessel::cgroups
