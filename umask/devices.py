"""Where tensors live (the CPU by default, CUDA when asked for and present), and what that machine has to spare."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UmaskError

# torch is imported where a function needs it: the dashboard reads
# share_of_cores to start its first worker before it has imported torch.
if TYPE_CHECKING:
    import torch


def resolve_device(name: str | None = "cpu") -> torch.device:
    """``"cpu"``, ``"cuda"`` (or ``"cuda:N"``) or ``"auto"`` (CUDA when present).

    Raises:
        UmaskError: CUDA asked for on a machine without it, or an unknown name.
    """
    import torch

    name = "cpu" if name is None else name.strip().lower()  # an empty --device is a mistake, not cpu
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        _, colon, index = name.partition(":")
        if colon and not index.isdecimal():  # "cuda:" and "cuda:x" too
            raise UmaskError(f"Unknown device '{name}'; use cpu, cuda, cuda:N (N a GPU number) or auto.")
        if not torch.cuda.is_available():
            raise UmaskError(f"Device '{name}' was asked for but this machine has no CUDA GPU; use --device cpu or auto.")
        count = torch.cuda.device_count()
        if index and int(index) >= count:
            raise UmaskError(f"Device '{name}' does not exist; this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}.")
        return torch.device("cuda", int(index)) if index else torch.device("cuda")
    raise UmaskError(f"Unknown device '{name}'; use cpu, cuda, cuda:N or auto.")


# Where Linux says how much memory is free: the machine's, and a container's (cgroup v2).
MEMINFO = Path("/proc/meminfo")
CGROUP = Path("/sys/fs/cgroup")


def free_memory(device: torch.device) -> int | None:
    """Bytes a new allocation can take on ``device`` now, or None where this
    cannot be read (a CPU outside Linux).

    CUDA: the driver's free memory plus what torch holds cached but unused
    (an earlier run's, which it reuses). CPU: the kernel's MemAvailable, or
    less under a cgroup (container) limit, whose usage counts page cache the
    kernel drops before it kills anything.
    """
    if device.type == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    try:
        meminfo = MEMINFO.read_text()
    except OSError:
        return None
    found = re.search(r"^MemAvailable:\s+(\d+) kB", meminfo, re.M)
    if found is None:
        return None
    free = int(found.group(1)) * 1024
    try:
        limit = (CGROUP / "memory.max").read_text().strip()
        used = int((CGROUP / "memory.current").read_text())
        cache = re.search(r"^inactive_file (\d+)$", (CGROUP / "memory.stat").read_text(), re.M)
    except (OSError, ValueError):
        return free
    if limit == "max":
        return free
    return min(free, max(0, int(limit) - used + (int(cache.group(1)) if cache else 0)))


def share_of_cores() -> int:
    """Torch threads for one optimisation on a shared CPU: half the cores, at
    least one, so a run leaves room for the page, the browser and other runs."""
    return max(1, (os.cpu_count() or 2) // 2)
