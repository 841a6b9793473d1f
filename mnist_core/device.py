"""Choosing the device: CUDA > MPS > CPU unless the user names one."""

from __future__ import annotations

import torch

from mnist_core.errors import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def mps_available() -> bool:
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


def describe_device(device: torch.device) -> str:
    """Human words for a device: the GPU's name, or the CPU and its thread count."""
    if device.type == "cuda":
        return f"CUDA · {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU · {torch.get_num_threads()} threads"
