"""Reading the memory this process can still take, from /proc and the cgroup files."""

import ctypes
import os
import types
from pathlib import Path
from typing import Any

import pytest

from recnet_cli.hostmemory import available_host_memory, memory_limit, physical_memory


def fake_system(
    root: Path, meminfo: str | None, cgroup: str | None, groups: dict[str, tuple[str, ...]]
) -> Path:
    """A file tree with /proc/meminfo, /proc/self/cgroup and cgroup folders (path: (limit, usage) or
    (limit, usage, memory.stat))."""
    (root / "proc/self").mkdir(parents=True)
    if meminfo is not None:
        (root / "proc/meminfo").write_text(meminfo)
    if cgroup is not None:
        (root / "proc/self/cgroup").write_text(cgroup)
    for folder, (limit, usage, *stat) in groups.items():
        path = root / folder
        path.mkdir(parents=True, exist_ok=True)
        v2 = not folder.startswith("sys/fs/cgroup/memory")
        (path / ("memory.max" if v2 else "memory.limit_in_bytes")).write_text(limit + "\n")
        (path / ("memory.current" if v2 else "memory.usage_in_bytes")).write_text(usage + "\n")
        if stat:
            (path / "memory.stat").write_text(stat[0])
    return root


MEMINFO = "MemTotal:       24000000 kB\nMemFree:         2000000 kB\nMemAvailable:   20000000 kB\n"


@pytest.mark.parametrize(
    ("cgroup", "groups", "available"),
    [
        # No cgroup limit anywhere: the system's MemAvailable.
        ("0::/user.slice/session-1.scope\n", {"sys/fs/cgroup": ("max", "5")}, 20000000 * 1024),
        # A SLURM job under cgroup v2: the job's limit binds, not its step's ("max") or the system's.
        (
            "0::/system.slice/slurmstepd.scope/job_7/step_0/user/task_0\n",
            {
                "sys/fs/cgroup/system.slice/slurmstepd.scope/job_7": ("8000000000", "3000000000"),
                "sys/fs/cgroup/system.slice/slurmstepd.scope/job_7/step_0/user/task_0": ("max", "1"),
            },
            5000000000,
        ),
        # A container under cgroup v1: its group is the mount's root, whatever path the host gave it.
        (
            "12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n",
            {"sys/fs/cgroup/memory": ("4000000000", "1500000000")},
            2500000000,
        ),
        # cgroup v1 with memory mounted together with other controllers: its limit binds all the same.
        (
            "9:memory,pids:/job\n",
            {"sys/fs/cgroup/memory/job": ("4000000000", "1500000000")},
            2500000000,
        ),
        # cgroup v1 without a limit says 2**63 rounded down to a page.
        ("4:memory:/\n", {"sys/fs/cgroup/memory": ("9223372036854771712", "100")}, 20000000 * 1024),
        # Over its limit (page cache counts as usage): nothing left, not a negative number.
        ("0::/a\n", {"sys/fs/cgroup/a": ("1000", "2000")}, 0),
        # The page cache no one uses (photos read earlier) is taken back before a process is ended: v2 and
        # v1 (whose hierarchical line counts the groups below too), and a stat without the line.
        (
            "0::/a\n",
            {
                "sys/fs/cgroup/a": (
                    "8000",
                    "7000",
                    "anon 4000\nfile 3000\nactive_file 500\ninactive_file 2500\n",
                )
            },
            3500,
        ),
        (
            "4:memory:/docker/abc\n",
            {"sys/fs/cgroup/memory": ("8000", "7000", "inactive_file 100\ntotal_inactive_file 2500\n")},
            3500,
        ),
        ("0::/a\n", {"sys/fs/cgroup/a": ("8000", "7000", "anon 4000\ninactive_file many\n")}, 1000),
        # Unreadable lines and values are left out.
        ("garbage\n0::/a\n", {"sys/fs/cgroup/a": ("lots", "2000")}, 20000000 * 1024),
    ],
)
def test_available_host_memory_is_the_tightest_of_the_system_and_the_cgroups_above_the_process(
    tmp_path: Path, cgroup: str, groups: dict[str, tuple[str, ...]], available: int
) -> None:
    assert available_host_memory(fake_system(tmp_path, MEMINFO, cgroup, groups)) == available


def test_available_host_memory_is_unknown_without_linux_files(tmp_path: Path) -> None:
    assert available_host_memory(fake_system(tmp_path, None, None, {})) is None


def test_available_host_memory_of_this_machine_is_a_plausible_number() -> None:
    available = available_host_memory()
    if available is None:
        pytest.skip("no /proc/meminfo here")
    assert 0 < available <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def test_the_memory_limit_is_the_machine_s_or_a_cgroup_s_below_it(tmp_path: Path) -> None:
    # The check of an image's size (imaging.read.USABLE_MEMORY) used the machine's memory in a container
    # limited to less, which then ended the process without a word where it would refuse the image
    machine = physical_memory()
    assert machine is not None
    job = "0::/system.slice/job_7/step_0\n"
    groups = {
        "sys/fs/cgroup/system.slice/job_7": ("4000000000", "3000000000"),
        "sys/fs/cgroup/system.slice/job_7/step_0": ("max", "1"),
    }
    assert memory_limit(fake_system(tmp_path / "job", MEMINFO, job, groups)) == min(machine, 4000000000)
    unlimited = {"sys/fs/cgroup": ("max", "5")}
    assert memory_limit(fake_system(tmp_path / "free", MEMINFO, "0::/\n", unlimited)) == machine
    v1 = {"sys/fs/cgroup/memory": ("9223372036854771712", "100")}  # v1's "no limit"
    assert memory_limit(fake_system(tmp_path / "v1", MEMINFO, "4:memory:/\n", v1)) == machine


class FakeKernel32:
    """Windows' kernel32 as ``physical_memory`` calls it: GlobalMemoryStatusEx fills the structure given."""

    def __init__(self, total: int, succeeds: bool = True) -> None:
        self.total, self.succeeds = total, succeeds
        self.lengths: list[int] = []

    def GlobalMemoryStatusEx(self, pointer: Any) -> int:
        status = pointer._obj
        self.lengths.append(status.length)
        if self.succeeds:
            status.total_physical, status.available_physical = self.total, self.total // 2
        return int(self.succeeds)


@pytest.mark.parametrize(("succeeds", "found"), [(True, 64 * 2**30), (False, None)])
def test_windows_gives_its_memory_through_global_memory_status(
    monkeypatch: pytest.MonkeyPatch, succeeds: bool, found: int | None
) -> None:
    monkeypatch.delattr(os, "sysconf", raising=False)  # Windows has none
    kernel32 = FakeKernel32(64 * 2**30, succeeds)
    monkeypatch.setattr(ctypes, "windll", types.SimpleNamespace(kernel32=kernel32), raising=False)
    assert physical_memory() == found
    assert kernel32.lengths == [64]  # the structure's size, which Windows checks


def test_memory_is_unknown_without_sysconf_or_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "sysconf", raising=False)  # Windows has none
    monkeypatch.delattr(ctypes, "windll", raising=False)
    assert physical_memory() is None
