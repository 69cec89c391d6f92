// The `vessel vm` verbs share the `vm` subcommand: vm.cc adds it and `run`,
// vm_verbs.cc the lifecycle verbs, vm_console.cc `console`.
#pragma once

#include <string>

#include "cli/cli.h"

namespace vessel::cli {

// create, start, list, state, pause, resume, stop, kill, delete.
void add_vm_lifecycle(CLI::App& vm, Globals& g);
// console.
void add_vm_console(CLI::App& vm, Globals& g);
// balloon (vm_balloon.cc).
void add_vm_balloon(CLI::App& vm, Globals& g);
// snapshot, restore, clone, snapshot-merge (vm_snapshot.cc).
void add_vm_snapshot(CLI::App& vm, Globals& g);
// receive, migrate (vm_migrate.cc).
void add_vm_migrate(CLI::App& vm, Globals& g);
// A name for a VM started without --name: "vm-" and 8 random hex digits.
std::string generated_vm_id();

}  // namespace vessel::cli
