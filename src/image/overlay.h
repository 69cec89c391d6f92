// Mounting image layers as an overlayfs.
//
// The lowerdir option of overlayfs is limited to one page, which absolute
// paths of store layers (…/layers/<64 hex>) fill at about 40 layers. The mount
// names each layer by a short link of the store (<root>/l/<id> -> ../layers/<hex>,
// <id> 6 characters of the diff ID in base64url, longer only when another layer
// has taken them) and runs with <root>/l as working directory, so lowerdir holds
// only the ids and images of up to overlayfs' own limit (500 lowers) mount.
// An image without layers (FROM scratch) gets the store's empty directory as lower.
// The overlay is volatile (kernel 5.10+; plain before): its upper dir is never synced,
// which spares every unmount a sync of the whole host filesystem. overlayfs then
// refuses to mount that upper/work pair again (work/work/incompat/volatile marks it):
// fine for container bundles and build steps, which mount fresh dirs once.
#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "image/digest.h"
#include "image/store.h"

namespace vessel::image {

// Mounts at `target` an overlay of the layers `diff_ids` (bottom layer first, may be empty)
// with `upper` and `work` (absolute paths, existing empty dirs); `flags` are mount flags (MS_NODEV…).
Status mount_layers(const Store& store, const std::vector<Digest>& diff_ids, const std::string& upper,
                    const std::string& work, const std::string& target, unsigned long flags);

// Removes the short links of a layer (`image rm`, before the layer itself); none is fine.
Status remove_layer_links(const Store& store, const Digest& diff_id);

}  // namespace vessel::image
