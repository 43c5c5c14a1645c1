#!/usr/bin/env bash
# Installs libvirt for Flotilla: the client library and headers (the server is built with the
# `libvirt` feature), the daemons and QEMU for the real-VM test, qemu-img for the test guest's
# base disk and genisoimage's isoinfo, which the tests read the seed ISOs back with.
# Everything comes from bookworm-backports: the image's qemu-utils is the backports one, and
# libvirt-dev must match libvirt0's suite.
# Idempotent: does nothing when all is present.
set -euo pipefail

PACKAGES=(libvirt-dev pkg-config libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
  libvirt-daemon-system qemu-system-x86 qemu-utils genisoimage)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

log() { printf '[libvirt-deps] %s\n' "$*" >&2; }
. /etc/os-release
suite="${VERSION_CODENAME:-bookworm}-backports"
list=/etc/apt/sources.list.d/flotilla-backports.list
if ! grep -rqs "$suite" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  mirror=$(grep -rhs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n 1)
  mirror=${mirror:-http://deb.debian.org/debian}
  log "adding $suite from $mirror"
  echo "deb $mirror $suite main" >"$list"
fi
log "installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  -t "$suite" "${PACKAGES[@]}" >/dev/null
