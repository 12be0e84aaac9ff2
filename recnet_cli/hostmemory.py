"""How much memory this machine has, and how much this process can still take: Linux's MemAvailable and the
memory limits of its cgroups."""

from __future__ import annotations

import os
from pathlib import Path

# Where cgroup v2 and v1 keep memory limits: the hierarchy's mount, the limit file, the usage file, and the
# line of memory.stat that gives the page cache in the usage that no one is using (files read a while ago,
# the photos of a batch): the kernel takes it back before it would end a process, so it is headroom, as
# Kubernetes' working set counts it.
CGROUP_V2_MEMORY = ("sys/fs/cgroup", "memory.max", "memory.current", "inactive_file")
CGROUP_V1_MEMORY = (
    "sys/fs/cgroup/memory",
    "memory.limit_in_bytes",
    "memory.usage_in_bytes",
    "total_inactive_file",
)


def available_host_memory(root: Path = Path("/")) -> int | None:
    """Bytes of memory this process can still take on Linux: the system's MemAvailable, or less where its
    cgroup (a container's, a scheduler job's) or one above it is limited; None where that is unknown."""
    found = [bytes_ for bytes_ in (meminfo_available(root), cgroup_headroom(root)) if bytes_ is not None]
    return min(found, default=None)


def meminfo_available(root: Path) -> int | None:
    try:
        lines = (root / "proc/meminfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, value = line.partition(":")
        if name == "MemAvailable" and value.split()[1:] == ["kB"]:
            return int(value.split()[0]) * 1024
    return None


def cgroup_headroom(root: Path) -> int | None:
    """The least that any memory-limited cgroup from this process's up to the root has left, or None."""
    try:
        membership = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    headrooms = []
    for line in membership:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and not controllers:
            mount, *files = CGROUP_V2_MEMORY
        elif "memory" in controllers.split(","):
            mount, *files = CGROUP_V1_MEMORY
        else:
            continue
        own = Path(path.lstrip("/"))
        for group in (own, *own.parents):  # inside a container, its own group is the mount's root
            headrooms.append(cgroup_group_headroom(root / mount / group, *files))
    return min((headroom for headroom in headrooms if headroom is not None), default=None)


def cgroup_group_headroom(folder: Path, limit_file: str, usage_file: str, idle_cache: str) -> int | None:
    """A cgroup's limit less its usage but the page cache it can take back (``idle_cache`` of its
    memory.stat), or None when it has no limit (or cannot be read)."""
    try:
        limit, usage = ((folder / name).read_text().strip() for name in (limit_file, usage_file))
    except OSError:
        return None
    if not (limit.isdigit() and usage.isdigit()) or int(limit) >= 2**62:  # "max", or v1's "no limit"
        return None
    return max(0, int(limit) - int(usage) + stat_bytes(folder / "memory.stat", idle_cache))


def stat_bytes(stat_file: Path, name: str) -> int:
    """The bytes a cgroup's memory.stat gives on its line ``name``; 0 where it cannot be read."""
    try:
        lines = stat_file.read_text().splitlines()
    except OSError:
        return 0
    values = (value for key, _, value in (line.partition(" ") for line in lines) if key == name)
    value = next(values, "").strip()
    return int(value) if value.isdigit() else 0


def physical_memory() -> int | None:
    """This machine's memory in bytes (Linux, macOS); None where that is unknown (Windows)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
