"""Choosing the device (CUDA > MPS > CPU unless the user names one), and what a run needs to know of it: its free
memory, its name, and the allocator setting that keeps training steps from page-faulting."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import re
from pathlib import Path

import torch

from mnist_core.errors import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def mps_available() -> bool:
    """Apple's Metal GPU can be used here (also False on torch builds that lack the MPS backend)."""
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def available_devices() -> list[str]:
    """Device names that work on this machine, best first (for the app's device select)."""
    names = []
    if torch.cuda.is_available():
        names.append("cuda")
    if mps_available():
        names.append("mps")
    names.append("cpu")
    return names


def pick_device(name: str = "auto") -> torch.device:
    """Resolve `auto|cpu|cuda|mps` to a torch.device, refusing a device this machine lacks."""
    if name not in DEVICE_CHOICES:
        raise ConfigError(f"unknown device {name!r}: choose one of {', '.join(DEVICE_CHOICES)}")
    if name == "auto":
        return torch.device(available_devices()[0])
    if name not in available_devices():
        raise ConfigError(f"device {name!r} is not available on this machine: use --device auto or cpu")
    return torch.device(name)


def free_memory_bytes(device: torch.device) -> int | None:
    """Memory a training run can still use on `device`: free GPU memory on CUDA, the kernel's MemAvailable on a
    Linux CPU; None where it is not known (MPS, other systems)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu":
        try:
            meminfo = Path("/proc/meminfo").read_text()
        except OSError:
            return None
        match = re.search(r"^MemAvailable:\s+(\d+) kB", meminfo, re.MULTILINE)
        return int(match.group(1)) * 1024 if match else None
    return None


def describe_device(device: torch.device) -> str:
    """Human words for a device: the GPU's name, or the CPU and its thread count."""
    if device.type == "cuda":
        return f"CUDA · {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU · {torch.get_num_threads()} threads"


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc's allocator to keep freed tensor memory for reuse instead of giving it back to the OS at once.

    Why: a training step allocates and frees activations of a few MB each. By default glibc returns blocks over
    128 KB to the OS right away and raises that limit only after it has seen a large block freed, so a process that
    has not happened to free one (the app's fresh worker process) page-faults the same memory in again at every
    step: 3× the page faults and ~30 % slower training than the CLI, whose data loading raised the limit by chance.
    Process-wide, once. True when the allocator is glibc's; elsewhere nothing changes.
    """
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc: macOS, Windows, musl
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    served_from_heap = mallopt(m_mmap_threshold, 32 << 20)  # blocks up to 32 MiB (glibc's maximum) use the heap,
    kept = mallopt(m_trim_threshold, 512 << 20)  # which keeps up to 512 MiB free before trimming
    return bool(served_from_heap and kept)
