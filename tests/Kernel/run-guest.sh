#!/usr/bin/env bash
# The kernel suite: boots a Debian kernel that has the WireGuard module in a qemu guest (TCG: no KVM
# here) and runs the kernel-backend tests (tests/Kernel/KernelGuest, built on the host) inside it, in
# process. The guest sees the host's root file system read-only over 9p (so it runs the host's dotnet,
# wg, wireguard-go and our build) and one writable share for the results; it has no network device.
#
#   run-guest.sh RUNNER_DLL RESULTS_DIR [PWSH_DLL MANIFEST]
# With PWSH_DLL and MANIFEST the guest also runs tests/Kernel/Cmdlets.Guest.ps1 (the cmdlets over the
# module) into RESULTS_DIR/results-cmdlets.txt.
# Exit: 0 = the runner ran (its results file says what passed), 77 = a tool is missing and CI is not
# set (skip), anything else = failure. Under CI=true a missing piece is a failure, never a skip.
# The guest (kernel + modules + initramfs) is cached in $WG_KERNEL_CACHE (default
# /var/cache/wireguardgateway-kernel), keyed by the kernel package's name and version.
set -euo pipefail

runner=$1
results=$2
pwsh_dll=${3:-}
manifest=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${WG_KERNEL_CACHE:-/var/cache/wireguardgateway-kernel}
boot_timeout=${WG_KERNEL_TIMEOUT:-360}

missing() {
    echo "kernel: $1" >&2
    if [ "${CI:-}" = "true" ]; then exit 1; fi
    exit 77
}

for tool in qemu-system-x86_64 apt-get apt-cache dpkg-deb depmod cpio gzip python3; do
    command -v "$tool" >/dev/null || missing "'$tool' is not installed (.ci/run installs qemu-system-x86, busybox-static, cpio, kmod)"
done
[ -x /bin/busybox ] || missing "busybox-static is not installed"
case "$(ldd /bin/busybox 2>&1 || true)" in *"not a dynamic"*|*"statically"*) ;; *) missing "/bin/busybox is not the static build (install busybox-static)";; esac

# The package: WG_KERNEL_PACKAGE, else the newest linux-image-6.1.0-N-amd64 the Debian mirror lists
# (the mirror drops old ABI numbers, so a fixed pin would break; the generic flavour has 9p).
pkg=${WG_KERNEL_PACKAGE:-$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' | sort -V | tail -1)}
[ -n "$pkg" ] || missing "no linux-image-6.1.0-N-amd64 package is listed by apt-cache (run apt-get update)"
version=$(apt-cache show "$pkg" | awk '/^Version:/ {print $2; exit}')
kver=${pkg#linux-image-}
guest="$cache_root/$pkg-$version"

if [ ! -f "$guest/ready" ]; then
    echo "kernel: building the guest for $pkg $version into $guest"
    mkdir -p "$cache_root"
    work=$(mktemp -d "$cache_root/.build.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    ( cd "$work" && apt-get download "$pkg" >/dev/null 2>&1 ) || missing "apt-get download $pkg failed"
    dpkg-deb -x "$work"/*.deb "$work/root"
    depmod -b "$work/root" "$kver"
    mods="$work/root/lib/modules/$kver"
    # Module files in dependency order (modules.dep lists a module's dependencies; load those first).
    python3 - "$mods" > "$work/order" <<'PY'
import sys
mods = sys.argv[1]
deps = {}
for line in open(f"{mods}/modules.dep"):
    name, _, rest = line.partition(":")
    deps[name.strip()] = rest.split()
by_base = {n.rsplit("/", 1)[1].split(".ko")[0]: n for n in deps}
want = ["virtio_pci", "9pnet_virtio", "9p", "wireguard", "veth", "tun"]
order = []
def visit(n):
    if n in order: return
    for d in reversed(deps[n]): visit(d)
    order.append(n)
for w in want: visit(by_base[w])
print("\n".join(order))
PY
    init="$work/initramfs"
    mkdir -p "$init"/{bin,proc,sys,dev,host,modules}
    cp /bin/busybox "$init/bin/busybox"
    while read -r m; do cp "$mods/$m" "$init/modules/"; echo "${m##*/}"; done < "$work/order" > "$init/modules/order"
    cat > "$init/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
for m in $(/bin/busybox cat /modules/order); do /bin/busybox insmod /modules/$m || echo "guest: insmod $m failed"; done
/bin/busybox mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /host || echo "guest: mounting the host root failed"
for d in proc sys dev; do /bin/busybox mount --bind /$d /host/$d; done
/bin/busybox mount -t tmpfs tmp /host/tmp
/bin/busybox mount -t tmpfs run /host/run
/bin/busybox mkdir -p /host/tmp/results
/bin/busybox mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 results /host/tmp/results
/bin/busybox chroot /host /bin/sh /tmp/results/guest-cmd.sh > /host/tmp/results/console.log 2>&1
echo $? > /host/tmp/results/exit-code
/bin/busybox sync
/bin/busybox umount /host/tmp/results
/bin/busybox poweroff -f
INIT
    chmod +x "$init/init"
    ( cd "$init" && find . | cpio -o -H newc --quiet | gzip -1 ) > "$work/initrd.gz"
    mkdir -p "$work/out"
    cp "$work/root/boot/vmlinuz-$kver" "$work/out/vmlinuz"
    mv "$work/initrd.gz" "$work/out/initrd.gz"
    echo "$pkg $version" > "$work/out/ready"
    rm -rf "$guest"
    mv "$work/out" "$guest"
    rm -rf "$work"
    trap - EXIT
fi

mkdir -p "$results"
rm -f "$results/exit-code" "$results/results.txt" "$results/results-cmdlets.txt" "$results/console.log"
dotnet_bin=$(readlink -f "$(command -v dotnet)")
cat > "$results/guest-cmd.sh" <<CMD
export HOME=/tmp DOTNET_CLI_HOME=/tmp DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export DOTNET_TieredPGO=0 DOTNET_TC_QuickJitForLoops=1 DOTNET_gcServer=0 DOTNET_EnableWriteXorExecute=0 DOTNET_GCHeapHardLimit=0x40000000
ip link set lo up
"$dotnet_bin" "$runner" /tmp/results/results.txt
CMD
if [ -n "$pwsh_dll" ]; then
    echo "\"$dotnet_bin\" \"$pwsh_dll\" -NoProfile -NonInteractive -File \"$here/Cmdlets.Guest.ps1\" -Manifest \"$manifest\" -ResultsPath /tmp/results/results-cmdlets.txt" >> "$results/guest-cmd.sh"
fi

bios=()
[ -f /usr/share/qemu/qboot.rom ] && bios=(-bios /usr/share/qemu/qboot.rom)
start=$(date +%s)
set +e
timeout --kill-after=5 "$boot_timeout" qemu-system-x86_64 -accel tcg -cpu max -m 2048 -smp 1 -nographic -no-reboot \
    "${bios[@]}" -nic none -kernel "$guest/vmlinuz" -initrd "$guest/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1 rdinit=/init" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs "local,path=$results,mount_tag=results,security_model=none" > "$results/qemu.log" 2>&1
rc=$?
set -e
echo "kernel: guest ($pkg $version) ran $(( $(date +%s) - start )) s, qemu exit $rc"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then echo "kernel: the guest hit the ${boot_timeout} s timeout" >&2; tail -20 "$results/qemu.log" >&2; exit 1; fi
[ -f "$results/exit-code" ] || { echo "kernel: the guest did not run the tests" >&2; tail -30 "$results/qemu.log" >&2; exit 1; }
cat "$results/console.log"
exit 0
