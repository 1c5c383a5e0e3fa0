#!/usr/bin/env bash
# Fetches the Debian 12 kernels the guest tests boot (tests/guests) into a cache outside the
# repository, as root: `apt-get download` of each kernel package and `dpkg-deb -x` of it, so
# nothing lands in the host's /boot or /lib/modules. Prints one line per kernel:
# "<release> <vmlinuz> <modules dir>". Safe to run again: a kernel already unpacked is kept.
#
# The kernels are the ones Debian 12's configured archive points its meta-packages at:
# linux-image-amd64 (the 6.1 line) and linux-image-6.12-amd64 (the 6.12 line, built for
# bookworm and served from bookworm-security). A meta-package the archive does not offer is
# reported and skipped (exit 2 if none could be fetched).
set -euo pipefail
cache=${PYDOCK_GUEST_CACHE:-/var/cache/pydock-guests}
metas=("$@")
[ ${#metas[@]} -gt 0 ] || metas=(linux-image-amd64 linux-image-6.12-amd64)

mkdir -p "$cache"
updated=0
got=0
for meta in "${metas[@]}"; do
    pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
    if [ -z "$pkg" ] && [ $updated = 0 ]; then
        apt-get update -qq >&2 || true
        updated=1
        pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
    fi
    if [ -z "$pkg" ]; then
        echo "guest-kernels: $meta is not offered by the configured apt sources" >&2
        continue
    fi
    dir="$cache/$pkg"
    if [ ! -e "$dir/.done" ]; then
        tmp=$(mktemp -d "$cache/.dl-XXXXXX")
        # apt-get download drops privileges to _apt, which needs to write the directory.
        chmod 755 "$tmp" && chown _apt "$tmp" 2>/dev/null || true
        (cd "$tmp" && apt-get download -qq "$pkg" >&2)
        rm -rf "$dir"
        dpkg-deb -x "$tmp"/"$pkg"_*.deb "$dir"
        rm -rf "$tmp"
        # The package ships no modules.dep (its postinst runs depmod): make it here, so
        # modprobe finds the guest's modules by name (kmod, -b: the unpacked tree).
        depmod -b "$dir" "$(ls "$dir/lib/modules")"
        touch "$dir/.done"
    fi
    release=$(ls "$dir/lib/modules")
    echo "$release $dir/boot/vmlinuz-$release $dir/lib/modules/$release"
    got=$((got + 1))
done
[ $got -gt 0 ] || exit 2
