// RUN: the step's command as a container of vessel's own runtime on the
// step's WorkRoot (`vessel --root R run --bundle DIR ID` as a child process,
// so the container gets exactly what `vessel run` gives: namespaces, cgroups,
// the default seccomp profile, capabilities). The network is the host's, so
// that a RUN can fetch what it needs, as `podman build --network host` does,
// and so is name resolution: the host's /etc/resolv.conf and /etc/hosts are
// bound read-only into the step (a file the image lacks stays out of the layer).
#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "image/build/workroot.h"

namespace vessel::image::build {

struct RunStep {
  std::vector<std::string> argv;  // shell form already wrapped in the stage's SHELL
  std::vector<std::string> env;   // K=V: the stage's ENV and ARGs
  std::string cwd = "/";          // created when missing
  std::string user;               // the image's USER, resolved in the rootfs
  bool quiet = false;             // keep the output unless the command fails
  std::string runtime_root;       // --root for the container's state
};

Status run_in(WorkRoot& root, const RunStep& s);

}  // namespace vessel::image::build
