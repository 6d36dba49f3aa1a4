"""CPU priority: article work runs below the translate lane, so a lane request never queues for
the cores behind it.

On a CPU, a one-sentence lane request and the articles a worker holds share the same cores.  The
lane has its own inference thread (it never waits for the article batch in hand), but while the
articles' batches and summaries keep every core busy, the operating system would still give the
lane's thread only its share of them: a sentence took 2.5 times as long as on an idle worker.
So the threads that do article work (the article inference thread, the summarization thread,
and the compute threads they start) run at a lower priority, ``KURZ_BACKGROUND_NICE`` steps of
Linux's ``nice`` below the rest of the worker: the scheduler then hands the cores to the lane's
threads whenever they have work, and to the articles the rest of the time, so article
throughput is unchanged while no lane request is in flight.

Only lowering is used: any process may lower a thread's priority, raising it back needs
privileges.  A thread's priority is inherited by the threads it creates, which is how the
compute threads follow: torch's OpenMP team is started by the thread that first runs inference
on it, and a CTranslate2 model starts its worker threads when it is constructed, so the
article-side models are constructed on a lowered thread (``call_lowered``).  Where the system
has no per-thread priority (not Linux), nothing changes.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

import structlog

__all__ = ["call_lowered", "lower_this_thread", "thread_nice"]

log = structlog.get_logger(__name__)

T = TypeVar("T")


def lower_this_thread(steps: int) -> bool:
    """Lower the calling thread's CPU priority by ``steps`` (0: leave it); whether it was done.

    Linux's ``setpriority`` on a thread id acts on that one thread (POSIX would act on the whole
    process, which is why other systems are left alone)."""
    if steps <= 0 or not sys.platform.startswith("linux"):
        return False
    thread = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + steps))
    except OSError as error:  # a sandbox that forbids it: run at the same priority
        log.warning("could not lower a thread's priority", error=repr(error))
        return False
    return True


def thread_nice(native_id: int) -> int:
    """The nice value of one of this process's threads (by its native id)."""
    return os.getpriority(os.PRIO_PROCESS, native_id)


def call_lowered(function: Callable[[], T], steps: int) -> T:
    """Run ``function`` on a new thread lowered by ``steps`` and return its result (or raise
    its exception): threads it starts, such as a CTranslate2 model's workers, stay lowered."""
    if steps <= 0:
        return function()
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        lower_this_thread(steps)
        try:
            outcome.append(function())
        except BaseException as error:  # noqa: BLE001 - handed to the caller as it is
            failure.append(error)

    thread = threading.Thread(target=run, name="lowered-loader")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]
