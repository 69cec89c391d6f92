// `run`: create + start; in the foreground, wait for the container, forward
// signals to it, relay its terminal, delete it when it exits.
#pragma once

#include "common/error.h"
#include "container/lifecycle.h"

namespace vessel::container {

// Returns the exit status to exit with: the process's, or 128+signal.
// With `detach` returns 0 once the container is started. With `keep` (runc's --keep) a
// foreground container is left, stopped, for `delete` instead of deleted when it exits.
Result<int> run(CreateOptions o, bool detach, bool keep = false);

}  // namespace vessel::container
