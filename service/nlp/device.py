"""Where inference runs: the device, and how many threads this worker may use.

Nothing here imports torch at module level: a ctranslate2 worker asks ctranslate2 whether a GPU
is usable and never loads torch at all (hundreds of megabytes of resident memory and seconds of
start-up it would pay for nothing); only the transformers backend asks torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from service.errors import ModelUnavailableError
from service.settings import BackendName, Settings

__all__ = [
    "CGROUP_CPU_MAX",
    "Device",
    "DeviceLike",
    "configure_threads",
    "cuda_usable",
    "inference_threads",
    "resolve_device",
    "usable_cores",
]

#: cgroup v2's CPU bandwidth limit of this process's container: "<quota> <period>" or "max ...".
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


class DeviceLike(Protocol):
    """A device as both backends read it; ``torch.device`` and :class:`Device` both fit."""

    @property
    def type(self) -> str:
        """``cpu`` or ``cuda``."""

    @property
    def index(self) -> int | None:
        """The CUDA device's ordinal, or ``None`` for the default one."""


@dataclass(frozen=True, slots=True)
class Device:
    """A device without torch: what ``resolve_device`` returns and the ctranslate2 backend uses.

    The transformers backend turns it into a ``torch.device`` (``torch.device(str(device))``).
    """

    type: str
    index: int | None = None

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


def cuda_usable(backend: BackendName) -> bool:
    """Whether the backend can run on a GPU here, asked of that backend's own library.

    ctranslate2 counts CUDA devices through its own runtime (a CPU-only wheel says 0), so a
    ctranslate2 worker decides without importing torch.
    """
    if backend == "ctranslate2":
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count()) > 0
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(name: str, backend: BackendName = "transformers") -> Device:
    """``auto`` means CUDA when a GPU is usable, else the CPU; ``cuda`` without one is an error."""
    if name == "auto":
        return Device("cuda" if cuda_usable(backend) else "cpu")
    if name == "cuda" and not cuda_usable(backend):
        raise ModelUnavailableError("cuda", "KURZ_DEVICE=cuda but no CUDA device is usable")
    return Device(name)


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
    """The threads inference may use; torch's intra-op pool is sized to them, once, up front.

    Only the transformers backend computes with torch; a ctranslate2 worker passes the count to
    each translator instead (``intra_threads``), and importing torch here just to size a pool
    it never uses would load torch into every worker.
    """
    threads = inference_threads(settings)
    if settings.backend == "transformers":
        import torch

        torch.set_num_threads(threads)
    return threads
