"""serving/batching.py: concurrent calls merged into one, each caller gets its own rows."""
import threading

import numpy as np

from serving.batching import Batcher


def run_concurrently(batcher, function, inputs):
    """Calls batcher.run from one thread per input, all released together; [result or error]."""
    answers, barrier = [None] * len(inputs), threading.Barrier(len(inputs))

    def call(i):
        barrier.wait()
        try:
            answers[i] = batcher.run("model", function, inputs[i])
        except ValueError as error:
            answers[i] = error
    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return answers


def test_concurrent_calls_share_one_call_and_get_their_own_rows():
    calls = []

    def double(arrays):
        calls.append(len(arrays["x"]))
        return {"y": 2 * arrays["x"]}
    inputs = [{"x": np.arange(i, i + 1 + i % 2, dtype=np.float32)} for i in range(6)]  # 1 or 2 rows each
    answers = run_concurrently(Batcher(timeout=1.0), double, inputs)  # 1 s: every caller queues in time
    assert [a["y"].tolist() for a in answers] == [(2 * x["x"]).tolist() for x in inputs]
    assert calls == [9]  # 3 x 1 row + 3 x 2 rows, one call


def test_a_bad_request_fails_alone_and_max_rows_splits():
    def checked(arrays):
        if (arrays["x"] < 0).any():
            raise ValueError("negative")
        return {"y": arrays["x"] + 1}
    inputs = [{"x": np.array([v], np.float32)} for v in (1.0, -1.0, 3.0)]
    answers = run_concurrently(Batcher(timeout=1.0), checked, inputs)
    assert answers[0]["y"].tolist() == [2.0] and answers[2]["y"].tolist() == [4.0]
    assert isinstance(answers[1], ValueError)

    calls = []

    def count(arrays):
        calls.append(len(arrays["x"]))
        return {"y": arrays["x"]}
    answers = run_concurrently(Batcher(timeout=1.0, max_rows=2), count, [{"x": np.ones(1)}] * 3)
    assert sorted(calls) == [1, 2] and all(a["y"].tolist() == [1.0] for a in answers)


def test_non_batch_major_outputs_are_computed_per_request():
    def total(arrays):
        return {"sum": np.array(arrays["x"].sum())}  # a scalar: cannot be split by rows
    answers = run_concurrently(Batcher(timeout=1.0), total, [{"x": np.array([1.0])}, {"x": np.array([2.0, 5.0])}])
    assert [float(a["sum"]) for a in answers] == [1.0, 7.0]


def test_a_lone_call_runs_and_leaves_no_queue():
    batcher = Batcher(timeout=0.0)
    assert batcher.run("m", lambda a: {"y": a["x"] * 3}, {"x": np.array([2])})["y"].tolist() == [6]
    assert batcher._pending == {}
