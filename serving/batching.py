"""Merges concurrent Predict calls of one signature into one call, like TF Serving's
`--enable_batching`: under load one TensorFlow call serves many requests.

The first request to arrive while no batch is forming leads: it waits `timeout` seconds
(0: just yields, so a lone request is not slowed), takes every request queued by then
(up to `max_rows` rows), concatenates their inputs along axis 0, runs the function once
and hands each request its rows of every output. Batches run concurrently with each
other; a batch whose outputs are not batch-major is rerun request by request.
"""
import threading
import time
from typing import Callable, Dict, List

import numpy as np

Arrays = Dict[str, np.ndarray]


class _Task:
    def __init__(self, inputs: Arrays):
        self.inputs, self.rows = inputs, len(next(iter(inputs.values())))
        self.done, self.result, self.error, self.solo = threading.Event(), None, None, False


class Batcher:
    """Batches calls per key (e.g. one model version's signature).

    Args:
      timeout: seconds a batch's leader waits for more requests.
      max_rows: most rows in one batch; requests that would pass it run on their own.
    """

    def __init__(self, timeout: float = 0.0, max_rows: int = 10_000):
        self.timeout, self.max_rows = timeout, max_rows
        self._lock = threading.Lock()
        self._pending: Dict[object, List[_Task]] = {}

    def run(self, key, function: Callable[[Arrays], Arrays], inputs: Arrays) -> Arrays:
        """`function(inputs)`, possibly computed in one call with other threads' inputs."""
        task = _Task(inputs)
        with self._lock:
            queue = self._pending.setdefault(key, [])
            queue.append(task)
            leader = len(queue) == 1
        if leader:
            time.sleep(self.timeout)
            with self._lock:
                queue = self._pending.pop(key)
            batch, rows = [], 0
            for other in queue:
                if batch and rows + other.rows > self.max_rows:
                    other.solo = True
                    other.done.set()
                else:
                    batch.append(other)
                    rows += other.rows
            self._execute(function, batch)
        else:
            task.done.wait()
            if task.solo:
                self._execute(function, [task])
        if task.error is not None:
            raise task.error
        return task.result

    @staticmethod
    def _execute(function, batch: List[_Task]) -> None:
        if len(batch) > 1:
            try:
                outputs = function({k: np.concatenate([t.inputs[k] for t in batch]) for k in batch[0].inputs})
                if all(np.ndim(v) and len(v) == sum(t.rows for t in batch) for v in outputs.values()):
                    start = 0
                    for t in batch:
                        t.result = {k: v[start:start + t.rows] for k, v in outputs.items()}
                        start += t.rows
            except Exception:  # noqa: S110  rerun one by one: each request gets its own answer or error
                pass
        for t in batch:
            if t.result is None:
                try:
                    t.result = function(t.inputs)
                except Exception as error:
                    t.error = error
            t.done.set()
