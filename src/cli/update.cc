// vessel update [--resources FILE|-] [runc's resource flags] ID
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <optional>

#include <unistd.h>

#include "cli/cli.h"
#include "common/fs.h"
#include "common/ram_size.h"
#include "common/strings.h"
#include "container/control.h"
#include "oci/json_reader.h"

namespace vessel::cli {
namespace {

struct UpdateArgs {
  std::string id;
  std::string resources;
  // Sizes as runc reads them ("50M", "1g", "-1"): parsed in flags_to_json().
  std::string memory, memory_swap, memory_reservation, kernel_memory, kernel_memory_tcp;
  std::optional<int64_t> cpu_quota, pids_limit;
  std::optional<uint64_t> cpu_period, cpu_shares, blkio_weight, cpu_rt_period;
  std::optional<int64_t> cpu_rt_runtime;
  std::string cpuset_cpus, cpuset_mems;
};

// runc's flags as a linux.resources object, on top of --resources when both are given.
Result<oci::Json> flags_to_json(const UpdateArgs& a) {
  oci::Json j = oci::Json::object();
  if (!a.resources.empty()) {
    std::string text;
    if (a.resources == "-") {
      text = TRYC(read_fd_bounded(STDIN_FILENO, kMaxConfigBytes), "--resources -");
    } else {
      text = TRYC(read_file_or_pipe(a.resources), "--resources");
    }
    j = TRYC(oci::parse_json(text, "--resources"), "update");
  }
  auto set = [&](const char* group, const char* key, auto v) {
    if (v) j[group][key] = *v;
  };
  struct SizeFlag {
    const char* flag;
    const std::string& text;
    const char* key;
  };
  for (const SizeFlag& f : {SizeFlag{"--memory", a.memory, "limit"}, SizeFlag{"--memory-swap", a.memory_swap, "swap"},
                            SizeFlag{"--memory-reservation", a.memory_reservation, "reservation"},
                            SizeFlag{"--kernel-memory", a.kernel_memory, "kernel"},
                            SizeFlag{"--kernel-memory-tcp", a.kernel_memory_tcp, "kernelTCP"}}) {
    if (f.text.empty()) continue;
    std::optional<int64_t> v = f.text == "-1" ? std::optional<int64_t>(-1) : parse_ram_size(f.text);
    if (!v) return Error::invalid(cat(f.flag, " ", f.text, ": invalid size (a number of bytes with an optional k, m, g, t or p suffix)"));
    j["memory"][f.key] = *v;
  }
  set("cpu", "quota", a.cpu_quota);
  set("cpu", "period", a.cpu_period);
  set("cpu", "shares", a.cpu_shares);
  set("cpu", "realtimePeriod", a.cpu_rt_period);
  set("cpu", "realtimeRuntime", a.cpu_rt_runtime);
  if (!a.cpuset_cpus.empty()) j["cpu"]["cpus"] = a.cpuset_cpus;
  if (!a.cpuset_mems.empty()) j["cpu"]["mems"] = a.cpuset_mems;
  set("pids", "limit", a.pids_limit);
  set("blockIO", "weight", a.blkio_weight);
  return j;
}

void add_update(CLI::App& app, Globals& g) {
  auto a = std::make_shared<UpdateArgs>();
  auto* cmd = app.add_subcommand("update", "change the resource limits of a container");
  cmd->add_option("-r,--resources", a->resources, "linux.resources JSON file, - for stdin");
  cmd->add_option("--memory", a->memory, "memory limit (bytes; k, m, g suffixes as runc: 50M, 1g)");
  cmd->add_option("--memory-swap", a->memory_swap, "memory+swap limit (-1: unlimited)");
  cmd->add_option("--memory-reservation", a->memory_reservation, "soft memory limit");
  cmd->add_option("--kernel-memory", a->kernel_memory, "kernel memory limit (v1)");
  cmd->add_option("--kernel-memory-tcp", a->kernel_memory_tcp, "kernel TCP buffer memory limit (v1)");
  cmd->add_option("--cpu-quota", a->cpu_quota, "CFS quota in microseconds");
  cmd->add_option("--cpu-period", a->cpu_period, "CFS period in microseconds");
  cmd->add_option("--cpu-share,--cpu-shares", a->cpu_shares, "CPU shares (relative weight)");
  cmd->add_option("--cpu-rt-period", a->cpu_rt_period, "realtime period");
  cmd->add_option("--cpu-rt-runtime", a->cpu_rt_runtime, "realtime runtime");
  cmd->add_option("--cpuset-cpus", a->cpuset_cpus, "CPUs allowed, e.g. 0-1");
  cmd->add_option("--cpuset-mems", a->cpuset_mems, "memory nodes allowed");
  cmd->add_option("--pids-limit", a->pids_limit, "maximum number of processes");
  cmd->add_option("--blkio-weight", a->blkio_weight, "block I/O weight (10-1000)");
  cmd->add_option("id", a->id, "container ID")->required();
  cmd->callback([a, &g] {
    auto j = flags_to_json(*a);
    if (!j) return report(std::move(j).error());
    auto r = oci::parse_resources(*j, a->resources.empty() ? "update" : "--resources");
    if (!r) return report(std::move(r).error());
    finish(container::update(g.root, a->id, *r));
  });
}

VerbRegistration reg_update(64, add_update);

}  // namespace
}  // namespace vessel::cli
