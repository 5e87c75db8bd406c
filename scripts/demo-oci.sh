#!/usr/bin/env bash
# Build a busybox-static bundle and run it with gantry-oci alone (no daemon).
set -euo pipefail
runtime=${1:?usage: demo.sh /path/to/gantry-oci}
demo=$(mktemp -d /tmp/gantry-demo.XXXXXX)
root=$(mktemp -d /tmp/gantry-demo-root.XXXXXX)
trap 'rm -rf "$demo" "$root"' EXIT
mkdir -p "$demo/rootfs/bin" "$demo/rootfs/proc" "$demo/rootfs/sys" "$demo/rootfs/dev" "$demo/rootfs/tmp" "$demo/rootfs/etc"
cp /bin/busybox "$demo/rootfs/bin/busybox"
for applet in sh echo cat ls hostname id; do ln -s busybox "$demo/rootfs/bin/$applet"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$demo/rootfs/etc/passwd"
(cd "$demo" && "$runtime" spec)
jq '.process.terminal = false
    | .process.args = ["/bin/sh", "-c", "echo hello from gantry: $(hostname), uid $(id -u), $(ls /bin | wc -l) files in /bin"]
    | .hostname = "gantry-demo"' "$demo/config.json" > "$demo/config.json.new"
mv "$demo/config.json.new" "$demo/config.json"
"$runtime" --root "$root" run --bundle "$demo" "demo-$$"
