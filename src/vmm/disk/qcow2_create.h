// Creating qcow2 overlays: what `qemu-img create -f qcow2 -b BASE -F FMT`
// makes, so that each clone of a VM snapshot writes into its own
// copy-on-write layer over the snapshot's disk.
#pragma once

#include <string>

#include "common/error.h"

namespace vessel::vmm::disk {

// Creates `path` (which must not exist; mode 0600): a qcow2 version 3 image,
// 64 KiB clusters, whose virtual size is the backing image's and whose
// unallocated clusters read from `backing` (an absolute path; its format,
// raw or qcow2, detected and recorded). `qemu-img check` finds it clean.
Status create_qcow2_overlay(const std::string& path, const std::string& backing);

}  // namespace vessel::vmm::disk
