// Freezing a cgroup: v1 freezer.state, v2 cgroup.freeze + cgroup.events.
#pragma once

#include "cgroups/cgroup_dir.h"
#include "common/error.h"

namespace vessel::cgroups {

// Writes FROZEN and waits until freezer.state reads FROZEN (thawing again on timeout).
Status freeze_v1(const CgroupDir& dir);
Status thaw_v1(const CgroupDir& dir);
Result<bool> frozen_v1(const CgroupDir& dir);

// Writes 1 to cgroup.freeze and waits for "frozen 1" in cgroup.events.
Status freeze_v2(const CgroupDir& dir);
Status thaw_v2(const CgroupDir& dir);
Result<bool> frozen_v2(const CgroupDir& dir);

}  // namespace vessel::cgroups
