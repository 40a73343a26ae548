"""The training loop both Trainers share: fit on the transformed splits, one line per epoch
with per-example losses, and how long it took (model_run_dir/train_stats.json, read by
benchmarks/scale.py)."""
import json
import os
import time
from typing import Dict, Optional

import tensorflow as tf
import tensorflow_transform as tft

from models import features as F


class EpochLine(tf.keras.callbacks.Callback):
    """Sets each epoch's `loss` and `val_loss` to per-example means over the split (a tfrs Model
    logs the last batch's) and prints them (unless not `show`); first in the callbacks, so early
    stopping and History see them. sizes: {"loss": train examples, "val_loss": eval examples};
    summed: a batch's loss is the sum over its examples (tfrs Retrieval), not the mean."""

    def __init__(self, epochs: int, sizes: Dict[str, int], batch_size: int, summed: bool, show: bool = True):
        super().__init__()
        self.epochs, self.sizes, self.batch_size, self.summed, self.show = epochs, sizes, batch_size, summed, show
        self.start, self.totals = 0.0, {}

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        self.start, self.totals = time.monotonic(), {"loss": 0.0, "val_loss": 0.0}

    def _add(self, key: str, batch: int, logs: dict) -> None:
        size = min(self.batch_size, self.sizes[key] - batch * self.batch_size)
        self.totals[key] += float(logs["loss"]) * (1 if self.summed else size)

    def on_train_batch_end(self, batch: int, logs: Optional[dict] = None) -> None:
        self._add("loss", batch, logs)

    def on_test_batch_end(self, batch: int, logs: Optional[dict] = None) -> None:
        self._add("val_loss", batch, logs)

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        logs.update({key: total / max(self.sizes[key], 1) for key, total in self.totals.items() if key in logs})
        if not self.show:
            return
        shown = [f"{key} {value:.4f}" for key, value in logs.items()
                 if not key.endswith("total_loss") and not (key.endswith("regularization_loss") and value == 0)]
        print(f"  epoch {epoch + 1}/{self.epochs} ({time.monotonic() - self.start:.0f} s): {', '.join(shown)}",
              flush=True)


def _count(dataset: tf.data.Dataset) -> int:
    return int(dataset.reduce(0, lambda n, batch: n + tf.size(batch[F.RATING])).numpy())


def fit(model: tf.keras.Model, fn_args, tft_output: tft.TFTransformOutput, batch_size: int,
        epochs: int, callbacks: Optional[list] = None) -> None:
    """Trains `model` on fn_args.train_files, validating on fn_args.eval_files each epoch
    (losses as per-example means: EpochLine); `callbacks` (e.g. early stopping) go to Keras fit."""
    train = F.dataset(fn_args.train_files, tft_output, batch_size)
    evaluation = F.dataset(fn_args.eval_files, tft_output, batch_size, shuffle=False)
    sizes = {"loss": _count(F.dataset(fn_args.train_files, tft_output, batch_size, shuffle=False)),
             "val_loss": _count(evaluation)}
    loss = getattr(getattr(model, "task", None), "_loss", None)  # where tfrs tasks keep theirs
    line = EpochLine(epochs, sizes, batch_size, getattr(loss, "reduction", None) == tf.keras.losses.Reduction.SUM)
    start = time.monotonic()
    history = model.fit(train, epochs=epochs, verbose=0, callbacks=[line, *(callbacks or [])],
                        validation_data=evaluation)
    seconds = time.monotonic() - start
    epochs = len(history.epoch)  # fewer than asked when a callback stopped early
    examples = epochs * sizes["loss"]
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "train_stats.json"), "w") as f:
        json.dump({"epochs": epochs, "examples": examples, "fit_seconds": seconds,
                   "examples_per_second": examples / seconds,
                   "history": {key: [float(v) for v in values] for key, values in history.history.items()}}, f)
