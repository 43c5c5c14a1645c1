#!/usr/bin/env bash
# Builds "tiny", a bootable guest image from Debian packages, into DIR (default
# target/tiny-guest): tiny.vmlinuz (Debian's cloud kernel), tiny.initrd (a busybox initramfs)
# and tiny.qcow2 (a blank 16 MiB base disk). In a libvirt storage pool the three make the
# image "tiny", booted directly. The guest
#   - takes an address by DHCP (QEMU user networking) and serves HTTP on port 80:
#     /            "tiny <instance-id> boot <n>"
#     /health      "ok"
#     /boots       how many times it booted from its disk (a counter in the disk's first
#                  bytes: a reimaged instance starts again at 1)
#     /user-data   the user data of its cloud-init NoCloud seed (the `cidata` disk)
#     /reach       for each line "# flotilla-reach HOST PORT" of the user data, whether the
#                  guest could open a TCP connection there ("HOST:PORT open|closed")
#     /cgi-bin/busy?SECONDS  asks Flotilla's metadata endpoint (http://10.0.2.100/) for a
#                  busy lease of SECONDS, as an application would, and shows its answer
#   - powers off on the ACPI power button, and prints "FLOTILLA-READY" on the serial console.
# Idempotent: does nothing when the three files exist and were built by this very script.
set -euo pipefail

DIR=${1:-$(dirname "$0")/../target/tiny-guest}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
stamp=$(sha256sum "$0" | cut -d' ' -f1)
if [ -s "$DIR/tiny.vmlinuz" ] && [ -s "$DIR/tiny.initrd" ] && [ -s "$DIR/tiny.qcow2" ] &&
  [ "$(cat "$DIR/built-by" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi
log() { printf '[tiny-guest] %s\n' "$*" >&2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
kernel_pkg=$(apt-cache depends linux-image-cloud-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*\)/\1/p' | head -n 1)
log "downloading $kernel_pkg and busybox-static"
apt-get download "$kernel_pkg" busybox-static >/dev/null 2>&1 || {
  apt-get update -qq && apt-get download "$kernel_pkg" busybox-static >/dev/null
}
mkdir kernel bb root
dpkg-deb -x linux-image-*.deb kernel
dpkg-deb -x busybox-static_*.deb bb
bb="$work/bb/bin/busybox"
modules=$(ls -d kernel/lib/modules/*)

mkdir -p root/bin root/lib/modules root/etc root/proc root/sys root/dev root/www root/seed
cp "$bb" root/bin/busybox
for applet in $("$bb" --list); do [ "$applet" = busybox ] || ln -s busybox "root/bin/$applet"; done
# In load order (dependencies first).
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover \
  net_failover virtio_net virtio_blk cdrom isofs evdev button; do
  cp "$(find "$modules" -name "$m.ko" | head -n 1)" root/lib/modules/
done

cat >root/etc/udhcpc.script <<'EOF'
#!/bin/sh
[ "$1" = bound ] || [ "$1" = renew ] || exit 0
ifconfig "$interface" "$ip" netmask "$subnet" up
[ -n "$router" ] && route add default gw "$router" dev "$interface"
exit 0
EOF
cat >root/init <<'EOF'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover \
  net_failover virtio_net virtio_blk cdrom isofs evdev button; do
  insmod /lib/modules/$m.ko
done
for i in $(seq 50); do [ -b /dev/vda ] && [ -e /sys/class/net/eth0 ] && break; sleep 0.1; done
ifconfig lo 127.0.0.1 up
ifconfig eth0 up
udhcpc -i eth0 -q -n -t 10 -s /etc/udhcpc.script
# The boot counter in the disk's first 16 bytes.
n=$(dd if=/dev/vda bs=16 count=1 2>/dev/null | tr -cd '0-9')
n=$((${n:-0} + 1))
printf '%-16s' "$n" | dd of=/dev/vda bs=16 count=1 conv=notrunc 2>/dev/null
sync
id=unknown
if mount -t iso9660 -o ro /dev/vdb /seed 2>/dev/null; then
  id=$(sed -n 's/^instance-id: *//p' /seed/meta-data)
  cp /seed/user-data /www/user-data
fi
echo "tiny $id boot $n" >/www/index.html
echo ok >/www/health
echo "$n" >/www/boots
# The ACPI power button (shutdown, and reboot, which libvirt does as shutdown then start):
# any event from its input device powers off.
for d in /sys/class/input/input*; do
  if grep -q "Power Button" "$d/name" 2>/dev/null; then
    event=$(ls "$d" | grep '^event' | head -n 1)
    (head -c 1 "/dev/input/$event" >/dev/null && sync && poweroff -f) &
  fi
done
httpd -p 80 -h /www
# What the guest can reach, for the lines "# flotilla-reach HOST PORT" of its user data:
# /reach says "HOST:PORT open" or "HOST:PORT closed" for each (a test's probe of isolation).
(sleep 1
  : >/www/reach.tmp
  sed -n 's/^# flotilla-reach //p' /www/user-data 2>/dev/null | while read -r host port; do
    if nc -w 3 "$host" "$port" </dev/null >/dev/null 2>&1; then r=open; else r=closed; fi
    echo "$host:$port $r" >>/www/reach.tmp
  done
  mv /www/reach.tmp /www/reach) &
echo "FLOTILLA-READY $id boot $n"
while true; do sleep 3600; done
EOF
mkdir -p root/www/cgi-bin
cat >root/www/cgi-bin/busy <<'EOF'
#!/bin/sh
s=$(printf '%s' "$QUERY_STRING" | tr -cd '0-9')
body="{\"seconds\":${s:-0}}"
printf 'Content-Type: text/plain\r\n\r\n'
printf 'PUT /busy HTTP/1.0\r\nContent-Length: %s\r\n\r\n%s' "${#body}" "$body" | timeout 2 nc 10.0.2.100 80
EOF
chmod +x root/init root/etc/udhcpc.script root/www/cgi-bin/busy

log "packing the initramfs"
(cd root && find . | "$bb" cpio -o -H newc 2>/dev/null) | gzip -9 >"$DIR/tiny.initrd"
cp kernel/boot/vmlinuz-* "$DIR/tiny.vmlinuz"
rm -f "$DIR/tiny.qcow2"
qemu-img create -q -f qcow2 "$DIR/tiny.qcow2" 16M
chmod 644 "$DIR"/tiny.*
echo "$stamp" >"$DIR/built-by"
log "built $DIR/tiny.{vmlinuz,initrd,qcow2}"
