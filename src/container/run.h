// `run`: create + start; in the foreground, wait for the container, forward
// signals to it, relay its terminal, delete it when it exits.
#pragma once

#include "common/error.h"
#include "container/lifecycle.h"

namespace vessel::container {

// Returns the exit status to exit with: the process's, or 128+signal.
// With `detach` returns 0 once the container is started.
Result<int> run(CreateOptions o, bool detach);

}  // namespace vessel::container
