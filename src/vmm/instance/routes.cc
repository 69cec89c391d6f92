// The API's rows: Firecracker's endpoints (same paths, fields and status
// codes) and vessel's own under /vessel/. Add new rows in add_routes() or
// from another file through Vmm::router() (see api/router.h).
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "common/strings.h"
#include "vmm/config/json_reader.h"
#include "vmm/disk/disk.h"
#include "vmm/instance/vmm.h"
#include "vmm/virtio/block/block.h"
#include "vmm/virtio/mmio.h"

namespace vessel::vmm {

using api::ApiCall;
using api::bad_request;
using api::HttpResponse;
using api::json_ok;
using api::no_content;
using api::status_call;
using nlohmann::json;

namespace {
// The {id} of the path must equal the id field of the body, as Firecracker requires.
Status same_id(const std::string& path_id, const std::string& body_id, const char* field) {
  if (path_id != body_id)
    return Error::invalid(cat(field, ": '", body_id, "' does not match the id in the path ('", path_id, "')"));
  return ok();
}
// The file `path` of field `field` exists and is a regular file (or a block
// device for drives), checked when it is configured as Firecracker does; it
// is opened at InstanceStart.
Status check_file(const std::string& path, const char* field, bool block_ok) {
  struct stat st {};
  if (::stat(path.c_str(), &st) < 0) return Error::from_errno(cat(field, ": ", path));
  if (!S_ISREG(st.st_mode) && !(block_ok && S_ISBLK(st.st_mode)))
    return Error::invalid(cat(field, ": ", path, " is not a regular file"));
  return ok();
}
}  // namespace

Status Vmm::update_drive(const std::string& id, const std::optional<std::string>& path,
                         const std::optional<RateLimiterConfig>& limiter) {
  DriveConfig* d = nullptr;
  for (auto& old : opts_.config.drives)
    if (old.drive_id == id) d = &old;
  BuiltVm::Device* dev = nullptr;
  for (auto& x : vm_.devices)
    if (x.kind == "block" && x.id == id) dev = &x;
  if (!d || !dev) return Error::invalid(cat("drive_id: no drive '", id, "' in the running VM"));
  // A migration flushes (and with copy_disks copies) the images it started with.
  if (path && migrating())
    return Error::invalid("path_on_host: a migration of this VM is in progress: its drives cannot be replaced now");
  // Opened here, on the API thread; the worker only sees the swap.
  std::unique_ptr<disk::DiskImage> image;
  if (path) image = TRYC(disk::open_disk(*path, d->is_read_only), cat("path_on_host: ", *path));
  auto& blk = static_cast<virtio::BlockDevice&>(dev->transport->device());
  TRY(dev->transport->update_device([&](virtio::VirtioDevice&) -> Status {
    if (image) TRYC(blk.replace_disk(std::move(image)), cat("drive ", id));
    if (limiter) blk.set_rate_limits(limiter->bytes_per_second(), limiter->ops_per_second());
    return ok();
  }));
  // The capacity may have changed: a configuration change interrupt, on
  // which Linux's virtio_blk re-reads it (as Firecracker does).
  if (path) dev->transport->notify_config();
  if (path) d->path_on_host = *path;
  if (limiter) d->rate_limiter = limiter;
  return ok();
}

void Vmm::add_routes() {
  api::Router& r = router_;
  add_snapshot_routes();

  // InstanceInfo.
  r.add("GET", "/", [this](const ApiCall&) {
    return json_ok({{"id", opts_.id},
                    {"state", firecracker_state(status_)},
                    {"vmm_version", opts_.version},
                    {"app_name", "vessel"}});
  });
  r.add("GET", "/version", [this](const ApiCall&) { return json_ok({{"firecracker_version", opts_.version}}); });

  r.add("GET", "/machine-config", [this](const ApiCall&) { return json_ok(to_json(opts_.config)["machine-config"]); });
  auto machine_config = [this](bool full) {
    return [this, full](const ApiCall& c) {
      return status_call([&]() -> Status {
        TRY(require_not_started(full ? "PUT /machine-config" : "PATCH /machine-config"));
        json j = TRY(c.json());
        opts_.config.machine = TRY(parse_machine_spec(j, opts_.config.machine, full));
        return ok();
      });
    };
  };
  r.add("PUT", "/machine-config", machine_config(true));
  r.add("PATCH", "/machine-config", machine_config(false));

  r.add("PUT", "/boot-source", [this](const ApiCall& c) {
    return status_call([&]() -> Status {
      TRY(require_not_started("PUT /boot-source"));
      json j = TRY(c.json());
      BootSourceConfig b = TRY(parse_boot_source(j));
      TRY(check_file(b.kernel_image_path, "kernel_image_path", false));
      if (!b.initrd_path.empty()) TRY(check_file(b.initrd_path, "initrd_path", false));
      opts_.config.boot_source = b;
      return ok();
    });
  });

  r.add("PUT", "/drives/{drive_id}", [this](const ApiCall& c) {
    return status_call([&]() -> Status {
      TRY(require_not_started("PUT /drives"));
      json j = TRY(c.json());
      DriveConfig d = TRY(parse_drive(j));
      TRY(same_id(c.param("drive_id"), d.drive_id, "drive_id"));
      TRY(check_file(d.path_on_host, "path_on_host", true));
      auto& drives = opts_.config.drives;
      for (auto& old : drives)
        if (old.drive_id == d.drive_id) {
          old = d;  // PUT replaces
          return ok();
        }
      if (d.is_root_device)
        for (const auto& old : drives)
          if (old.is_root_device)
            return Error::invalid(cat("is_root_device: drive '", old.drive_id, "' is the root device already"));
      drives.push_back(d);
      return ok();
    });
  });
  r.add("PATCH", "/drives/{drive_id}", [this](const ApiCall& c) {
    return status_call([&]() -> Status {
      json j = TRY(c.json());
      JsonReader rd(j, "");
      TRY(rd.check_object());
      std::string id = TRY(rd.req_str("drive_id"));
      TRY(same_id(c.param("drive_id"), id, "drive_id"));
      auto path = TRY(rd.str("path_on_host"));
      std::optional<RateLimiterConfig> limiter;
      if (const auto* v = rd.find("rate_limiter")) limiter = TRY(parse_rate_limiter(*v, "rate_limiter"));
      TRY(rd.finish());
      DriveConfig* d = nullptr;
      for (auto& old : opts_.config.drives)
        if (old.drive_id == id) d = &old;
      if (!d) return Error::invalid(cat("drive_id: no drive '", id, "'"));
      if (path) TRY(check_file(*path, "path_on_host", true));
      if (status_ == VmStatus::kStopped) return Error::invalid("PATCH /drives: the VM is stopped");
      if (status_ != VmStatus::kNotStarted) return update_drive(id, path, limiter);
      if (path) d->path_on_host = *path;
      if (limiter) d->rate_limiter = limiter;
      return ok();
    });
  });

  r.add("PUT", "/network-interfaces/{iface_id}", [this](const ApiCall& c) {
    return status_call([&]() -> Status {
      TRY(require_not_started("PUT /network-interfaces"));
      json j = TRY(c.json());
      NetConfig n = TRY(parse_net(j));
      TRY(same_id(c.param("iface_id"), n.iface_id, "iface_id"));
      for (auto& old : opts_.config.nets)
        if (old.iface_id == n.iface_id) {
          old = n;
          return ok();
        }
      opts_.config.nets.push_back(n);
      return ok();
    });
  });

  r.add("PUT", "/entropy", [this](const ApiCall& c) {
    return status_call([&]() -> Status {
      TRY(require_not_started("PUT /entropy"));
      json j = TRY(c.json());
      opts_.config.entropy = TRY(parse_entropy(j));
      return ok();
    });
  });

  r.add("PUT", "/logger", [this](const ApiCall& c) {
    return status_call([&]() -> Status {
      json j = TRY(c.json());
      return apply_logger(TRY(parse_logger(j)));
    });
  });
  r.add("PUT", "/metrics", [this](const ApiCall& c) {
    return status_call([&]() -> Status {
      json j = TRY(c.json());
      return open_metrics(TRY(parse_metrics(j)));
    });
  });

  r.add("PUT", "/actions", [this](const ApiCall& c) {
    return status_call([&]() -> Status {
      json j = TRY(c.json());
      JsonReader rd(j, "");
      TRY(rd.check_object());
      std::string action = TRY(rd.req_str("action_type"));
      TRY(rd.finish());
      if (action == "InstanceStart") return start_vm();
      if (action == "SendCtrlAltDel") return send_ctrl_alt_del();
      if (action == "FlushMetrics") return flush_metrics();
      return Error::invalid(cat("action_type: '", action, "' is not one of InstanceStart, SendCtrlAltDel, FlushMetrics"));
    });
  });

  r.add("PATCH", "/vm", [this](const ApiCall& c) {
    return status_call([&]() -> Status {
      json j = TRY(c.json());
      JsonReader rd(j, "");
      TRY(rd.check_object());
      std::string state = TRY(rd.req_str("state"));
      TRY(rd.finish());
      if (state == "Paused") return pause_vm();
      if (state == "Resumed") return resume_vm();
      return Error::invalid(cat("state: '", state, "' is not Paused or Resumed"));
    });
  });
  r.add("GET", "/vm/config", [this](const ApiCall&) { return json_ok(to_json(opts_.config)); });

  add_overcommit_routes();

  // vessel's own: what `vm state` and `vm list` print.
  r.add("GET", "/vessel/state", [this](const ApiCall& c) {
    return json_ok(state_json(c.request.query.find("stats") != std::string::npos));
  });
}

}  // namespace vessel::vmm
