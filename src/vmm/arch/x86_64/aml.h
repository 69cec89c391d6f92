// A tiny AML encoder: just the terms a DSDT of static devices needs
// (Scope, Device, Name, Package, integers, strings, EISA ids and resource
// templates), and enough for a method that writes its argument to an I/O
// port (Method, Store, OperationRegion, Field). Each function returns the
// encoded bytes of one term.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace vessel::vmm::x86::aml {

using Bytes = std::vector<uint8_t>;

// PkgLength for `content_len` bytes that follow it (the encoding counts itself).
Bytes pkg_length(size_t content_len);
// "\\_SB_.COM1", "_HID", "\\_S5_": segments of up to 4 characters, padded with '_'.
Bytes name_string(std::string_view path);
Bytes integer(uint64_t v);
Bytes string(std::string_view s);
// EisaId("PNP0501") as its 32-bit compressed form.
Bytes eisa_id(std::string_view id);
Bytes name(std::string_view path, const Bytes& value);
Bytes package(const std::vector<Bytes>& elements);
Bytes buffer(const Bytes& data);
Bytes scope(std::string_view path, const std::vector<Bytes>& terms);
Bytes device(std::string_view path, const std::vector<Bytes>& terms);

// Control methods (enough for VMGENID's ADDR and the GED's _EVT).
// Method(path, nargs, Serialized|NotSerialized) { terms }
Bytes method(std::string_view path, uint8_t nargs, bool serialized, const std::vector<Bytes>& terms);
Bytes return_(const Bytes& value);
// If (predicate) { terms }
Bytes if_(const Bytes& predicate, const std::vector<Bytes>& terms);
Bytes lequal(const Bytes& a, const Bytes& b);
// Notify(object, value)
Bytes notify(std::string_view object, const Bytes& value);
// Arg0 .. Arg6
Bytes arg(unsigned n);

// Resource descriptors and the template (a Buffer ending with an end tag).
Bytes io_port(uint16_t base, uint8_t len);
Bytes irq_no_flags(uint8_t irq);
Bytes memory32_fixed(bool writable, uint32_t base, uint32_t len);
Bytes interrupt(bool edge, bool active_low, bool shared, uint32_t irq);
Bytes resource_template(const std::vector<Bytes>& descriptors);

// Store(value, target)
Bytes store(const Bytes& value, std::string_view target);
// OperationRegion(path, SystemIO, port, len)
Bytes io_region(std::string_view path, uint16_t port, uint8_t len);
// Field(region, ByteAcc, NoLock, Preserve) { name, 8, ... }: one byte per name, in order.
Bytes byte_fields(std::string_view region, const std::vector<std::string_view>& names);

}  // namespace vessel::vmm::x86::aml
