#!/bin/sh
# Second stage of a guest boot (tests/guests/boot.py), PID 1 on the host's root seen
# read-only through 9p under a tmpfs overlay: the system a pure cgroup v2 host offers, then
# the guest test subset with the worktree's installed pydock, results on the "results" 9p
# share, power off. Every exit path powers off, so a failure never hangs the host's run.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
. /pydock-guest.env
echo "pydock-guest: stage 2 started ($(uname -r))"

off() {
    sync
    umount /results 2>/dev/null
    # sysrq o: power off (ACPI), whatever kernel.sysrq allows the keyboard (sysrq.rst)
    echo o >/proc/sysrq-trigger
    sleep 30
    exit 1 # panic=-1 with QEMU's -no-reboot ends the guest if the power-off did not
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# The guest kernel's modules by name (modprobe and the kernel's request_module): fuse,
# bridge, veth, nf_tables... come from the unpacked package in the host's cache.
mkdir -p /lib/modules/$RELEASE && mount --bind "$MODULES" /lib/modules/$RELEASE
modprobe -q fuse
modprobe -q loop
# /run, /tmp and /var/tmp come from the host through 9p: each guest gets its own (overlay
# upper dirs cannot live on 9p). The tests' scratch (/var/tmp) is ext4 on a loop device
# whose image lives in the guest's memory, as a real host's disk: tmpfs before 6.6 has no
# user.* xattrs, which layers carry (tests on tmpfs itself make their own mounts).
for d in /run /tmp /var/lib/pydock; do
    mkdir -p $d && mount -t tmpfs -o mode=1777 tmpfs $d
done
truncate -s 1536M /run/scratch.img
mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 /run/scratch.img
mount -o loop /run/scratch.img /var/tmp && chmod 1777 /var/tmp
mkdir -p /results && mount -t 9p -o trans=virtio,version=9p2000.L results /results || off

# Pure cgroup v2 as systemd distributions set it up: the unified hierarchy on
# /sys/fs/cgroup, every controller pydock uses enabled for the root's children.
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
echo "+cpu +cpuset +io +memory +pids" >/sys/fs/cgroup/cgroup.subtree_control
ip link set lo up
hostname pydock-guest

{
    echo "release=$(uname -r)"
    echo "cgroup=$(stat -f -c %T /sys/fs/cgroup)"
    echo "controllers=$(cat /sys/fs/cgroup/cgroup.subtree_control)"
} >/results/host.txt

# the worktree (and its .venv) through its own read-only share, at the host's path
mkdir -p "$WORKTREE" &&
    mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 worktree "$WORKTREE" ||
    { echo "pydock-guest: 9p mount of the worktree failed"; off; }
cd "$WORKTREE" || { echo "pydock-guest: no worktree at $WORKTREE"; off; }
eval "set -- $PYTEST_ARGS"
PYDOCK_TEST_SCRATCH=/var/tmp/pdt-guest PYTHONPATH="$WORKTREE/tests/guests" \
    PYDOCK_GUEST_REPORT=/results/report.jsonl \
    .venv/bin/pytest -p no:cacheprovider -p guestreport "$@" >/results/pytest.log 2>&1
echo $? >/results/rc
dmesg >/results/dmesg.txt 2>/dev/null
off
