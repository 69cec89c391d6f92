#!/usr/bin/env python3
"""Start cost of a container from an image vs from a plain bundle directory.

  image:  vessel run --image IMG --rm -- /bin/true     (bundle built in the image store: overlay of
                                                        the image's layers, user resolved, removed after)
  bundle: vessel run --bundle B ID                       (the same busybox rootfs as a directory)

Both run the same config.json (the one `create --image` writes, args /bin/true),
interleaved (the order alternating each round) after a few warm-up runs.
Measures per run: wall (spawn -> vessel exits) and cpu (user+sys of vessel and
everything it reaped). Prints mean and median of both and the difference.
Not a test: prints numbers, asserts nothing.
usage: image_start.py VESSEL_BINARY [RUNS] [LAYERS]
  LAYERS > 1 adds that many one-file layers on top of the busybox layer.
"""
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import hashlib
import io

from benchlib import report, save_interleaved, spawn_and_wait

WARMUP = 3


def make_rootfs(d):
    rootfs = os.path.join(d, "rootfs")
    for sub in ("bin", "dev", "proc", "sys", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, sub))
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    for applet in ("true", "sh"):
        os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/:/bin/sh\n")
    with open(os.path.join(rootfs, "etc", "group"), "w") as f:
        f.write("root:x:0:\n")
    return rootfs


def oci_layout(d, rootfs, extra_layers):
    """An OCI layout: the rootfs as one layer, plus extra_layers one-file layers."""
    layout = os.path.join(d, "layout")
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs)

    def put(data):
        h = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, h), "wb") as f:
            f.write(data)
        return "sha256:" + h, len(data)

    tars = []
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        t.add(rootfs, arcname=".")
    tars.append(buf.getvalue())
    for i in range(extra_layers):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            data = str(i).encode()
            info = tarfile.TarInfo(f"layers/f{i}")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        tars.append(buf.getvalue())
    layers, diff_ids = [], []
    for data in tars:
        dg, size = put(data)
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": dg, "size": size})
        diff_ids.append(dg)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/true"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cd, csize = put(config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": csize},
                           "layers": layers}).encode()
    md, msize = put(manifest)
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": md, "size": msize, "annotations": {"org.opencontainers.image.ref.name": "localhost/bench-bb:1"}}]}, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    return layout


def main():
    vessel = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/vessel")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    extra = max(0, int(sys.argv[3]) - 1) if len(sys.argv) > 3 else 0
    if not os.access(vessel, os.X_OK):
        sys.exit(f"{vessel}: not executable")
    d = tempfile.mkdtemp(prefix="vessel-image-bench-")
    state, images = os.path.join(d, "state"), os.path.join(d, "images")
    base = [vessel, "--root", state, "--image-root", images]
    try:
        rootfs = make_rootfs(d)
        subprocess.check_call(base + ["image", "import", oci_layout(d, rootfs, extra)], stdout=subprocess.DEVNULL)
        img = "localhost/bench-bb:1"
        # The plain bundle gets exactly the config the image path writes.
        subprocess.check_call(base + ["create", "--image", img, "probe"])
        bundle = os.path.join(d, "bundle")
        os.makedirs(bundle)
        with open(os.path.join(images, "containers", "probe", "config.json")) as f:
            cfg = json.load(f)
        subprocess.check_call(base + ["delete", "--force", "probe"])
        cfg["process"]["args"] = ["/bin/true"]
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        shutil.copytree(rootfs, os.path.join(bundle, "rootfs"), symlinks=True)
        print(f"rootfs: busybox; image of {1 + extra} layer(s); /bin/true; same config.json for both")
        argvs = {
            "image": lambda i: base + ["run", "--image", img, "--rm", "--name", f"img{i}", "--", "/bin/true"],
            "bundle": lambda i: base + ["run", "--bundle", bundle, f"bun{i}"],
        }
        results = {k: [] for k in argvs}
        failures = {k: [] for k in argvs}
        names = list(argvs)
        for i in range(WARMUP + runs):
            order = names if i % 2 == 0 else names[::-1]
            for name in order:
                wall, cpu, code, err = spawn_and_wait(argvs[name](i))
                if code != 0:
                    failures[name].append(f"run {i}: exit {code}: {err[:300]}")
                    subprocess.run(base + ["delete", "--force", ("img" if name == "image" else "bun") + str(i)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                elif i >= WARMUP:
                    results[name].append((wall, cpu))
        summary = report(runs, WARMUP, results, failures, "start")
        if len(summary) == 2:
            a, b = summary["image"], summary["bundle"]
            print(f"image - bundle: wall mean {a[0] - b[0]:+.2f} ms, median {a[1] - b[1]:+.2f} ms; "
                  f"cpu mean {a[2] - b[2]:+.2f} ms, median {a[3] - b[3]:+.2f} ms")
            print(f"image / bundle: wall mean {a[0] / b[0]:.2f}x, median {a[1] / b[1]:.2f}x; "
                  f"cpu mean {a[2] / b[2]:.2f}x, median {a[3] / b[3]:.2f}x")
        save_interleaved(f"image_start_{1 + extra}layers",
                         f"Container start from an image ({1 + extra} layer(s)) vs from a bundle directory",
                         {"bundle": results["bundle"], "image": results["image"]}, summary, runs, "start")
    finally:
        for cid in os.listdir(state) if os.path.isdir(state) else []:
            subprocess.run(base + ["delete", "--force", cid], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["umount", "-R", os.path.join(images, "containers")], stderr=subprocess.DEVNULL)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
