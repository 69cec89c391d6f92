// API rows of the memory-overcommit and host-channel devices, with
// Firecracker's paths and fields: PUT/PATCH/GET /balloon,
// GET/PATCH /balloon/statistics, PUT /vsock.
#include <nlohmann/json.hpp>

#include "common/strings.h"
#include "vmm/config/json_reader.h"
#include "vmm/instance/vmm.h"
#include "vmm/virtio/balloon/balloon.h"

namespace vessel::vmm {

using api::ApiCall;
using api::bad_request;
using api::HttpResponse;
using api::json_ok;
using api::no_content;
using api::status_call;
using nlohmann::json;

namespace {
constexpr uint64_t kPagesPerMib = (1 << 20) / virtio::kBalloonPageSize;
}  // namespace

void Vmm::add_overcommit_routes() {
  api::Router& r = router_;

  r.add("PUT", "/balloon", [this](const ApiCall& c) {
    return status_call([&]() -> Status {
      TRY(require_not_started("PUT /balloon"));
      json j = TRY(c.json());
      BalloonConfig b = TRY(parse_balloon(j));
      if (b.amount_mib >= opts_.config.machine.mem_size_mib)
        return Error::invalid(cat("amount_mib: ", b.amount_mib, " MiB is not less than the guest's memory (",
                                  opts_.config.machine.mem_size_mib, " MiB)"));
      opts_.config.balloon = b;
      return ok();
    });
  });

  r.add("PATCH", "/balloon", [this](const ApiCall& c) {
    return status_call([&]() -> Status {
      json j = TRY(c.json());
      JsonReader rd(j, "");
      TRY(rd.check_object());
      uint64_t mib = TRY(rd.req_u64("amount_mib"));
      TRY(rd.finish());
      if (!opts_.config.balloon) return Error::invalid("amount_mib: no balloon device (PUT /balloon before InstanceStart)");
      if (mib >= opts_.config.machine.mem_size_mib)
        return Error::invalid(cat("amount_mib: ", mib, " MiB is not less than the guest's memory (",
                                  opts_.config.machine.mem_size_mib, " MiB)"));
      if (status_ == VmStatus::kStopped) return Error::invalid("the VM has stopped");
      opts_.config.balloon->amount_mib = mib;
      if (vm_.balloon) vm_.balloon->set_target_pages(static_cast<uint32_t>(mib * kPagesPerMib));
      return ok();
    });
  });

  r.add("GET", "/balloon", [this](const ApiCall&) {
    if (!opts_.config.balloon) return bad_request(Error::invalid("no balloon device is configured"));
    return json_ok(balloon_json(*opts_.config.balloon));
  });

  r.add("GET", "/balloon/statistics", [this](const ApiCall&) {
    if (!opts_.config.balloon) return bad_request(Error::invalid("no balloon device is configured"));
    if (!vm_.balloon) return bad_request(Error::invalid("the VM has not started: no balloon statistics yet"));
    if (vm_.balloon->stats_interval() == 0)
      return bad_request(Error::invalid("balloon statistics are not enabled: set stats_polling_interval_s"));
    uint64_t target = vm_.balloon->target_pages(), actual = vm_.balloon->actual_pages();
    json j{{"target_pages", target},
           {"actual_pages", actual},
           {"target_mib", target / kPagesPerMib},
           {"actual_mib", actual / kPagesPerMib}};
    auto stats = vm_.balloon->statistics();
    for (size_t i = 0; i < stats.size(); ++i)
      if (stats[i]) j[virtio::balloon_stat_name(static_cast<virtio::BalloonStat>(i))] = *stats[i];
    return json_ok(j);
  });

  r.add("PATCH", "/balloon/statistics", [this](const ApiCall& c) {
    return status_call([&]() -> Status {
      json j = TRY(c.json());
      JsonReader rd(j, "");
      TRY(rd.check_object());
      uint64_t secs = TRY(rd.req_u64("stats_polling_interval_s"));
      TRY(rd.finish());
      if (secs > 86400) return Error::invalid("stats_polling_interval_s: at most 86400 seconds");
      if (!opts_.config.balloon) return Error::invalid("stats_polling_interval_s: no balloon device is configured");
      if (vm_.balloon) TRY(vm_.balloon->set_stats_interval(static_cast<uint32_t>(secs)));
      opts_.config.balloon->stats_polling_interval_s = static_cast<uint32_t>(secs);
      return ok();
    });
  });

  r.add("PUT", "/vsock", [this](const ApiCall& c) {
    return status_call([&]() -> Status {
      TRY(require_not_started("PUT /vsock"));
      json j = TRY(c.json());
      opts_.config.vsock = TRY(parse_vsock(j));
      return ok();
    });
  });
}

}  // namespace vessel::vmm
