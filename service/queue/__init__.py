"""The job queue: the only package that imports the queue library (SAQ).

- ``jobs``: enqueue (with the atomic room check), look up and cancel article jobs; schedule
  webhook delivery jobs;
- ``lane``: the translate lane's queue: translate-only jobs the API enqueues and waits for;
- ``views``: SAQ's job records shown as the API's job views;
- ``draining``: the worker's queue, which hands jobs back while shutting down, the worker, its
  helper workers (the translate lane, the deliveries), and running them together.

``Job`` and ``Status`` are re-exported for the worker's hooks and the tests; nothing outside
this package imports SAQ (an import-linter contract keeps it so).
"""

from service.queue.draining import (
    DrainingQueue,
    DrainingWorker,
    TaskContext,
    make_helper_worker,
    make_worker,
    run_beside,
)
from service.queue.jobs import CancelOutcome, Job, JobPayload, JobQueue, Status
from service.queue.lane import LaneGlossary, LaneOutcome, TranslatePayload, TranslateQueue
from service.queue.views import finished_view, job_links, status_of, view_of

__all__ = [
    "CancelOutcome",
    "DrainingQueue",
    "DrainingWorker",
    "Job",
    "JobPayload",
    "JobQueue",
    "LaneGlossary",
    "LaneOutcome",
    "Status",
    "TaskContext",
    "TranslatePayload",
    "TranslateQueue",
    "finished_view",
    "job_links",
    "make_helper_worker",
    "make_worker",
    "run_beside",
    "status_of",
    "view_of",
]
