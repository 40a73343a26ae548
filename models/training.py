"""The training loop both Trainers share: fit on the transformed splits, and record
how long it took (model_run_dir/train_stats.json, read by benchmarks/scale.py)."""
import json
import os
import time
from typing import Optional

import tensorflow as tf
import tensorflow_transform as tft

from models import features as F


def fit(model: tf.keras.Model, fn_args, tft_output: tft.TFTransformOutput, batch_size: int,
        epochs: int, callbacks: Optional[list] = None) -> None:
    """Trains `model` on fn_args.train_files, validating on fn_args.eval_files each epoch;
    `callbacks` (e.g. early stopping) go to Keras fit."""
    train = F.dataset(fn_args.train_files, tft_output, batch_size)
    start = time.monotonic()
    history = model.fit(train, epochs=epochs, verbose=2, callbacks=callbacks,
                        validation_data=F.dataset(fn_args.eval_files, tft_output, batch_size, shuffle=False))
    seconds = time.monotonic() - start
    unshuffled = F.dataset(fn_args.train_files, tft_output, batch_size, shuffle=False)  # no buffer to fill
    epochs = len(history.epoch)  # fewer than asked when a callback stopped early
    examples = epochs * int(unshuffled.reduce(0, lambda n, batch: n + tf.size(batch[F.RATING])).numpy())
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "train_stats.json"), "w") as f:
        json.dump({"epochs": epochs, "examples": examples, "fit_seconds": seconds,
                   "examples_per_second": examples / seconds,
                   "history": {key: [float(v) for v in values] for key, values in history.history.items()}}, f)
