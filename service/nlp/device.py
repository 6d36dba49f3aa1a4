"""Where inference runs: the device, and how many threads this worker may use."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from service.errors import ModelUnavailableError
from service.settings import Settings

__all__ = [
    "CGROUP_CPU_MAX",
    "configure_threads",
    "inference_threads",
    "resolve_device",
    "usable_cores",
]

#: cgroup v2's CPU bandwidth limit of this process's container: "<quota> <period>" or "max ...".
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def resolve_device(name: str) -> torch.device:
    """``auto`` means CUDA when a GPU is usable, else the CPU; ``cuda`` without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailableError("cuda", "KURZ_DEVICE=cuda but no CUDA device is usable")
    return torch.device(name)


def usable_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """Cores this process may use: its CPU affinity, capped by a container's CPU quota.

    ``docker compose`` workers limited with ``cpus: 2`` see every core of the host in their
    affinity mask; only the cgroup quota says they get two.  Sizing thread pools from the quota
    keeps several workers on one machine from oversubscribing it.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, int(int(quota) / int(period))))


def inference_threads(settings: Settings) -> int:
    """``KURZ_INFERENCE_THREADS``, or every core this process may use when it is 0."""
    return settings.inference_threads or usable_cores()


def configure_threads(settings: Settings) -> int:
    """Give torch's intra-op pool the cores this worker may use, once, before any inference."""
    threads = inference_threads(settings)
    torch.set_num_threads(threads)
    return threads
