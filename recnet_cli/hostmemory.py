"""How much memory this machine has, and how much this process can still take: Linux's MemAvailable and the
memory limits of its cgroups."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
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


def memory_limit(root: Path = Path("/")) -> int | None:
    """The most memory this process may hold: the machine's, or less where its cgroup (a container's, a
    scheduler job's) or one above it is limited; None where that is unknown."""
    limits = [physical_memory(), *(cgroup_limit(folder, files[0]) for folder, files in memory_cgroups(root))]
    return min((limit for limit in limits if limit is not None), default=None)


def cgroup_headroom(root: Path) -> int | None:
    """The least that any memory-limited cgroup from this process's up to the root has left, or None."""
    headrooms = (cgroup_group_headroom(folder, *files) for folder, files in memory_cgroups(root))
    return min((headroom for headroom in headrooms if headroom is not None), default=None)


def memory_cgroups(root: Path) -> Iterator[tuple[Path, tuple[str, str, str]]]:
    """The folders of the memory cgroups from this process's up to the root, each with the names of its
    limit file, its usage file and the idle page cache's line in its memory.stat (v2's or v1's)."""
    try:
        membership = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return
    for line in membership:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and not controllers:
            layout = CGROUP_V2_MEMORY
        elif "memory" in controllers.split(","):
            layout = CGROUP_V1_MEMORY
        else:
            continue
        mount, limit_file, usage_file, idle_cache = layout
        own = Path(path.lstrip("/"))
        for group in (own, *own.parents):  # inside a container, its own group is the mount's root
            yield root / mount / group, (limit_file, usage_file, idle_cache)


def cgroup_limit(folder: Path, limit_file: str) -> int | None:
    """A cgroup's memory limit in bytes, or None when it has none (or it cannot be read)."""
    try:
        limit = (folder / limit_file).read_text().strip()
    except OSError:
        return None
    return int(limit) if limit.isdigit() and int(limit) < 2**62 else None  # "max", or v1's "no limit"


def cgroup_group_headroom(folder: Path, limit_file: str, usage_file: str, idle_cache: str) -> int | None:
    """A cgroup's limit less its usage but the page cache it can take back (``idle_cache`` of its
    memory.stat), or None when it has no limit (or cannot be read)."""
    limit = cgroup_limit(folder, limit_file)
    try:
        usage = (folder / usage_file).read_text().strip()
    except OSError:
        return None
    if limit is None or not usage.isdigit():
        return None
    return max(0, limit - int(usage) + stat_bytes(folder / "memory.stat", idle_cache))


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
    """This machine's memory in bytes; None where that is unknown."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # Windows has no sysconf
        return windows_physical_memory()


class MemoryStatus(ctypes.Structure):
    """Windows' MEMORYSTATUSEX, which GlobalMemoryStatusEx fills."""

    _fields_ = [
        ("length", ctypes.c_uint32),
        ("memory_load", ctypes.c_uint32),
        ("total_physical", ctypes.c_uint64),
        ("available_physical", ctypes.c_uint64),
        ("total_page_file", ctypes.c_uint64),
        ("available_page_file", ctypes.c_uint64),
        ("total_virtual", ctypes.c_uint64),
        ("available_virtual", ctypes.c_uint64),
        ("available_extended_virtual", ctypes.c_uint64),
    ]


def windows_physical_memory() -> int | None:
    """The machine's memory as Windows' GlobalMemoryStatusEx gives it; None elsewhere, or if it fails."""
    status = MemoryStatus(length=ctypes.sizeof(MemoryStatus))
    try:
        succeeded = ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status))  # type: ignore[attr-defined]
    except (AttributeError, OSError):  # not Windows
        return None
    return status.total_physical if succeeded and status.total_physical else None
