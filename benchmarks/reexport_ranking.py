"""A pushed ranking model re-exported with this checkout's serving code, its trained weights kept:
to measure a change of the serving graph (models/ranking/export.py, relations.py) without
training again.

    python -m benchmarks.reexport_ranking --pipeline-root outputs/pipeline \\
        --pushed outputs/serving/ranking/<version> --output /tmp/ranking/<version>

The rating model and the listwise re-ranker are built with the default ranking config (or
`--config`'s overrides, e.g. '{"projection_dim": null}' for a model trained before that
default) and their variables read from the pushed model; every table (side features, relation
features) is built again from the pipeline's Transform output, train split and retrieval
model as the Trainer builds them, with the EASE lambda the Trainer chose (listwise.json).
It then checks that both models give the same outputs for 200 users' 100 candidates each
(rtol 1e-4) and fails otherwise.
"""
import argparse
import glob
import json
import os

import numpy as np


def latest(pattern: str) -> str:
    found = sorted(glob.glob(pattern), key=os.path.getmtime)
    if not found:
        raise FileNotFoundError(pattern)
    return found[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline-root", required=True, help="the TFX pipeline root of the run that pushed it")
    parser.add_argument("--pushed", required=True, help="the pushed ranking model's version directory")
    parser.add_argument("--output", required=True)
    parser.add_argument("--config", default="{}", help="JSON: the ranking config overrides it was trained with")
    args = parser.parse_args()
    import tensorflow as tf
    import tensorflow_transform as tft

    from models import features as F
    from models.ranking import candidates, export
    from models.ranking import constants as C
    from models.ranking import model as M
    from models.ranking import relations as R
    from models.retrieval.model import tables
    root = args.pipeline_root
    tft_output = tft.TFTransformOutput(latest(f"{root}/Transform/transform_graph/*"))
    train_files = [latest(f"{root}/Transform/transformed_examples/*") + "/Split-train/*"]
    towers = tf.saved_model.load(latest(f"{root}/RetrievalTrainer/model/*") + "/Format-Serving")
    with open(latest(f"{root}/RankingTrainer/model_run/*") + "/listwise.json") as f:
        lam = json.load(f)["ease_lambda"]
    config = C.RankingConfig.of(json.loads(args.config))
    model = M.build(tft_output, config)
    listwise = M.ListwiseRanker(config.list_cross_layers, config.list_deep_layers)
    status = tf.train.Checkpoint(model=model, listwise=listwise).read(  # before the Ranker reads the embeddings
        os.path.join(args.pushed, "variables", "variables"))
    sizes = {key: F.vocabulary_size(tft_output, key) for key in (F.USER_ID, F.MOVIE_ID, F.MOVIE_GENRES)}
    t = tables(tft_output, train_files, sizes)
    user_ids = tft_output.vocabulary_by_name(F.vocabulary_name(F.USER_ID))
    queries = towers.embed_users(user_id=tf.constant(list(user_ids)))["embeddings"].numpy()
    embeddings = towers.movie_embeddings()["embeddings"].numpy()
    relations = R.Relations(*candidates.pairs(t["history"]), sizes[F.USER_ID], sizes[F.MOVIE_ID],
                            candidates.pad_rows(queries, sizes[F.USER_ID]),
                            candidates.pad_rows(embeddings, sizes[F.MOVIE_ID]),
                            R.genre_matrix(t["bags"][F.MOVIE_GENRES], sizes[F.MOVIE_GENRES]), lam, config.neighbours)
    ranker = export.Ranker(model, tft_output, train_files, listwise, relations)
    export.save(ranker, args.output)
    status.assert_existing_objects_matched()
    old = tf.saved_model.load(args.pushed).signatures["serving_default"]
    new = tf.saved_model.load(args.output).signatures["serving_default"]
    movies = tft_output.vocabulary_by_name(F.vocabulary_name(F.MOVIE_ID))
    rng = np.random.default_rng(0)
    for user in list(user_ids[:199]) + [b"nobody"]:
        inputs = {"user_id": tf.constant([user] * 100), "movie_id": tf.constant(rng.choice(movies, 100))}
        a, b = old(**inputs), new(**inputs)
        for key in a:
            np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), rtol=1e-4, atol=1e-5, err_msg=key)
    print(f"Wrote {args.output}: outputs equal to {args.pushed}'s on 200 users x 100 movies")


if __name__ == "__main__":
    main()
