"""Docker's default confinement besides capabilities and seccomp, as OCI config fragments.

The container gets its own /proc, /sys (read-only), /dev (a tmpfs with only
the standard devices, which crun creates: null, zero, full, random,
urandom, tty, ptmx->pts/ptmx), /dev/pts, /dev/shm and /dev/mqueue. Parts of
/proc and /sys that expose or change the host are masked (an empty file or
directory is mounted over them) or made read-only.
"""
from __future__ import annotations

# Host information and controls /proc and /sys would otherwise show: kernel
# memory, keys, timers and scheduler internals, ACPI, SCSI, firmware, and
# power-capping energy counters (which leak what other tenants compute).
MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)
# Kernel settings that are host-wide (or not namespaced well enough) to change.
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

SHM_BYTES = 64 * 1024 * 1024  # Docker's --shm-size default
TTY_GID = 5


def default_mounts(*, privileged: bool) -> list[dict]:
    """The kernel filesystems of a container; /sys and its cgroups are writable only when privileged."""
    sys_mode = "rw" if privileged else "ro"
    return [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                     f"gid={TTY_GID}"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={SHM_BYTES}"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", sys_mode]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", sys_mode]},
    ]


def device_rules(*, privileged: bool) -> list[dict]:
    """The device cgroup: which device nodes the container may open (mknod of any: CAP_MKNOD decides)."""
    if privileged:
        return [{"allow": True, "access": "rwm"}]

    def char(major: int, minor: int | None) -> dict:
        rule = {"allow": True, "type": "c", "major": major, "access": "rwm"}
        if minor is not None:
            rule["minor"] = minor
        return rule
    return [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "access": "m"},
        {"allow": True, "type": "b", "access": "m"},
        char(1, 3), char(1, 5), char(1, 7), char(1, 8), char(1, 9),   # null zero full random urandom
        char(5, 0), char(5, 1), char(5, 2),                          # tty console ptmx
        char(136, None),                                             # pts/*
    ]
