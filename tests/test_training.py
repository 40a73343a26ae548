"""models/training.py: per-example epoch losses (summed tfrs Retrieval loss and mean losses
alike) and train_stats.json, on a model too small to learn (its loss is known by hand)."""
import json
import math
import types

import tensorflow as tf
import tensorflow_recommenders as tfrs

from models import features as F
from models import training

SPEC = {F.RATING: tf.io.FixedLenFeature([], tf.float32)}


class _Output:
    """The one method of TFTransformOutput that features.dataset calls."""

    def transformed_feature_spec(self):
        return SPEC


class _Tiny(tfrs.Model):
    """Zero embeddings: every logit is 0, so a batch of B costs log(B) per row under the
    Retrieval task (summed over the batch), and predicts 0 for every rating (mean squared)."""

    def __init__(self, retrieval: bool):
        super().__init__()
        self.dense = tf.keras.layers.Dense(2, kernel_initializer="zeros", use_bias=False)
        if retrieval:
            self.task = tfrs.tasks.Retrieval()
        else:
            self.rating_task = tfrs.tasks.Ranking(loss=tf.keras.losses.MeanSquaredError())
        self.retrieval = retrieval

    def compute_loss(self, inputs, training=False):
        x = self.dense(tf.reshape(inputs[F.RATING], [-1, 1]))
        if self.retrieval:
            return self.task(x, x)
        return self.rating_task(labels=inputs[F.RATING], predictions=x[:, 0])


def _fit(tmp_path, retrieval: bool) -> dict:
    path = str(tmp_path / "examples.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for rating in (1.0, 2.0, 3.0):
            writer.write(tf.train.Example(features=tf.train.Features(feature={F.RATING: tf.train.Feature(
                float_list=tf.train.FloatList(value=[rating]))})).SerializeToString())
    model = _Tiny(retrieval)
    model.compile(optimizer=tf.keras.optimizers.SGD(0.0))
    args = types.SimpleNamespace(train_files=[path], eval_files=[path], model_run_dir=str(tmp_path / "run"))
    training.fit(model, args, _Output(), batch_size=2, epochs=1)
    with open(tmp_path / "run" / "train_stats.json") as f:
        return json.load(f)


def test_summed_retrieval_loss_is_reported_per_example(tmp_path, capsys):
    stats = _fit(tmp_path, retrieval=True)
    # Batches of 2 and 1 rows: 2 * log(2) + 1 * log(1) over 3 examples, in train and eval alike.
    expected = 2 * math.log(2) / 3
    assert math.isclose(stats["history"]["loss"][0], expected, rel_tol=1e-5)
    assert math.isclose(stats["history"]["val_loss"][0], expected, rel_tol=1e-5)
    assert (stats["epochs"], stats["examples"]) == (1, 3) and stats["fit_seconds"] > 0
    assert f"): loss {expected:.4f}, val_loss {expected:.4f}" in capsys.readouterr().out  # 0.4621


def test_mean_loss_is_weighted_by_batch_size(tmp_path, capsys):
    stats = _fit(tmp_path, retrieval=False)
    # Predictions 0: the squared errors are 1, 4 and 9, whatever the batches; their mean is 14 / 3.
    assert math.isclose(stats["history"]["loss"][0], 14 / 3, rel_tol=1e-5)
    assert math.isclose(stats["history"]["val_loss"][0], 14 / 3, rel_tol=1e-5)
    printed = capsys.readouterr().out
    assert printed.startswith("  epoch 1/1 (") and "loss 4.6667" in printed and "val_loss 4.6667" in printed
    assert "total_loss" not in printed and "regularization_loss" not in printed
