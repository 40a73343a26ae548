"""The run report: one self-contained HTML file (inline style and PNGs; nothing is fetched). TFDV's
own statistics HTML loads Facets from the network, so the statistics are a table here.

    python -m pipeline.report outputs   # writes outputs/report.html; local_runner does at the end of a run
"""
import argparse
import base64
import glob
import html
import io
import json
import os

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from components import examples as E
from components import retrieval_evaluator as RE
from components.two_stage_evaluator import two_stage_lists
from models import metrics


def runs(pattern: str) -> list:
    """The matches of `pattern`, by the number their path ends in (execution id or version), the newest last."""
    found = sorted(glob.glob(pattern), key=lambda path: int(os.path.basename(path)))
    if not found:
        raise FileNotFoundError(f"Nothing matches {pattern}: run the pipeline first (python -m pipeline.local_runner)")
    return found


def table(header: list, rows: list) -> str:
    """An HTML table; floats to 4 decimals, everything escaped."""
    return "<table>" + "".join("<tr>" + "".join(f"<t{tag}>{html.escape(f'{v:.4f}' if isinstance(v, float) else str(v))}"
                                                f"</t{tag}>" for v in row) + "</tr>"
                               for tag, row in [("h", header)] + [("d", row) for row in rows]) + "</table>"


def statistics(stats_uri: str, anomalies_uri: str) -> str:
    """Each feature's statistics in train and eval (StatisticsGen), and ExampleValidator's anomalies."""
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.utils import anomalies_util, display_util

    def summary(f) -> str:
        s = getattr(f, f.WhichOneof("stats"))
        return f"{s.common_stats.num_non_missing} present; " + (
            f"mean {s.mean:.4g}, sd {s.std_dev:.3g}, min {s.min:.4g}, max {s.max:.4g}" if f.HasField("num_stats")
            else f"{s.unique} unique, top: " + ", ".join(v.value for v in s.top_values[:3]))

    splits = {s: tfdv.load_stats_binary(f"{stats_uri}/Split-{s}/FeatureStats.pb").datasets[0]
              for s in ("train", "eval")}
    features = {s: {".".join(f.path.step): f for f in d.features} for s, d in splits.items()}
    out = table(["feature", *(f"{s} ({d.num_examples} examples)" for s, d in splits.items())],
                [[name, *(summary(features[s][name]) for s in splits)] for name in features["train"]])
    for split in ("train", "eval"):
        frame = display_util.get_anomalies_dataframe(
            anomalies_util.load_anomalies_binary(f"{anomalies_uri}/Split-{split}/SchemaDiff.pb"))
        out += f"<h3>Anomalies in {split}</h3>" + (frame.to_html() if len(frame) else "none")
    return out


def baselines(train: tuple, eval_: tuple, ids: list, lam: float, batch: int = 2000) -> dict:
    """Popularity and EASE (L2 weight `lam`) on the run's split, by the evaluators' protocol."""
    from models.ranking.relations import ease_weights

    index, people = {m: i for i, m in enumerate(ids)}, {u: i for i, u in enumerate(sorted(set(train[0])))}
    users, relevant = RE.relevance(eval_, index)
    pairs = np.array([(people[u], index[m]) for u, m in zip(*train, strict=True) if m in index]).T
    matrix = sp.csr_matrix((np.ones(pairs.shape[1], np.float32), pairs), shape=(len(people) + 1, len(ids)))
    (items, weights), top = ease_weights(matrix, lam), {"popularity": [], "EASE": []}
    for start in range(0, len(users), batch):  # a user without training movies: the last, empty row
        seen = matrix[[people.get(u, len(people)) for u in users[start:start + batch]]]
        ease = np.zeros(seen.shape, np.float32)
        ease[:, items] = seen[:, items] @ weights
        for name, scores in (("popularity", np.asarray(matrix.sum(axis=0))), ("EASE", ease)):
            top[name].append(np.argsort(-np.where(seen.toarray() > 0, -np.inf, scores), 1, kind="stable")[:, :100])
    return {name: metrics.ranking_metrics(np.concatenate(lists), relevant, metrics.cut_offs((10, 100), len(ids)))
            for name, lists in top.items()}


def curves(run_dir: str) -> str:
    """Inline PNGs of the per-epoch histories (train_stats.json, listwise.json) of a Trainer's run."""
    import matplotlib.pyplot as plt

    images = ""
    for path in sorted(glob.glob(f"{run_dir}/*.json")):
        figure, axes = plt.subplots(1, 2, figsize=(10, 3))
        for key, values in json.load(open(path)).get("history", {}).items():
            if "regularization" not in key and "total" not in key:
                axes[0 if "loss" in key else 1].plot(range(1, len(values) + 1), values, marker=".", label=key)
        [ax.legend() if ax.lines else ax.set_axis_off() for ax in axes]
        figure.suptitle(f"{path.split('/')[-4]} {os.path.basename(path)}, per epoch")
        figure.savefig(buffer := io.BytesIO(), format="png", dpi=72, bbox_inches="tight")
        plt.close(figure)
        images += f'<img alt="{path}" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'
    return images


def recommendations(serving_dir: str, movies: dict, eval_: tuple, users: int = 3, k: int = 10) -> str:
    """The pushed models' top k for the first eval users, with titles (`movies`: E.read_catalogue's);
    * marks a movie of the user's eval split."""
    ids, titles = movies["ids"], [t.decode() for t in movies["titles"]]
    dirs = [runs(f"{serving_dir}/{m}/*")[-1] for m in ("retrieval_bruteforce", "ranking")]
    index = {m: i for i, m in enumerate(ids)}
    chosen, relevant = RE.relevance(eval_, index)
    signatures = [tf.saved_model.load(path).signatures["serving_default"] for path in dirs]
    top = two_stage_lists(*signatures, chosen[:users], index)["ranking"][:, :k]
    return f"<p>Ranked retrieval candidates of {', '.join(dirs)}; * = rated in the eval split.</p>" + "".join(
        f"<h3>User {user.decode()}</h3>" + table(["rank", "movie", "title"], [
            [r + 1, ids[i].decode() + " *" * (i in relevant[u]), titles[i]] for r, i in enumerate(row) if i >= 0])
        for u, (user, row) in enumerate(zip(chosen, top, strict=False)))


def metrics_table(new: dict, this: str, old: dict, label: str) -> str:
    """An evaluator's verdict, and the model's metrics (`new`[`this`]) beside the last blessed model's (`old`)."""
    return f"<p>{'blessed' if new['blessed'] else 'NOT blessed'}: {html.escape(new['why'])}</p>" + table(
        ["metric", "this model", label], [[k, v, (old or {}).get(k, "none")] for k, v in new[this].items()])


def write(output_dir: str) -> str:
    """Writes <output_dir>/report.html from the newest artifacts of the runs there; returns its path."""
    root, serving = os.path.join(output_dir, "pipeline"), os.path.join(output_dir, "serving")
    retrieval, ranking = ([json.load(open(f"{path}/metrics.json")) for path in runs(f"{root}/{name}/evaluation/*")]
                          for name in ("RetrievalEvaluator", "RankingEvaluator"))
    examples, catalogue = (runs(f"{root}/{name}/*")[-1] for name in ("MovieLensExampleGen/examples",
                                                                     "MovieCatalogueGen/catalogue"))
    train, eval_ = E.read_pairs(examples, "train"), E.read_pairs(examples, "eval")
    lam = json.load(open(runs(f"{root}/RankingTrainer/model_run/*")[-1] + "/listwise.json"))["ease_lambda"]
    movies = E.read_catalogue(catalogue)
    quality = {**baselines(train, eval_, movies["ids"], lam),
               "retrieval alone": ranking[-1]["retrieval"], "served (retrieval, then ranking)": ranking[-1]["ranking"]}
    sections = {
        "Data statistics": statistics(*(runs(f"{root}/{name}/*")[-1] for name in ("StatisticsGen/statistics",
                                                                                  "ExampleValidator/anomalies"))),
        "Retrieval metrics": metrics_table(retrieval[-1], "model", retrieval[-1]["baseline"],
                                           "last blessed model, on this eval split"),
        "Ranking metrics (the served order)": metrics_table(ranking[-1], "ranking", next(
            (e["ranking"] for e in reversed(ranking[:-1]) if e["blessed"]), None), "last blessed model, on its "
            "run's eval split"),
        "Quality on the eval split": f"<p>EASE's L2 weight: {lam}, the RankingTrainer's choice.</p>" + table(
            ["model", "recall@10", "ndcg@10", "recall@100"],
            [[name, *(m[k] for k in ("recall@10", "ndcg@10", "recall@100"))] for name, m in quality.items()]),
        "Training curves": "".join(curves(runs(f"{root}/{t}/model_run/*")[-1]) for t in ("RetrievalTrainer",
                                                                                         "RankingTrainer")),
        "Recommendations": recommendations(serving, movies, eval_) if all(
            glob.glob(f"{serving}/{m}/*") for m in ("retrieval_bruteforce", "ranking")) else "No model was pushed yet."}
    with open(os.path.join(output_dir, "report.html"), "w") as f:
        f.write("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Run report</title><style>body{font:14px "
                "sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style></head>"
                f"<body><h1>Run report: {html.escape(os.path.abspath(output_dir))}</h1>"
                + "".join(f"<h2>{title}</h2>{body}" for title, body in sections.items()) + "</body></html>")
    return f.name


def main() -> None:
    parser = argparse.ArgumentParser(description="Write report.html of a pipeline run.")
    parser.add_argument("output_dir", help="the run's --output-dir (holding pipeline/ and serving/)")
    print(write(parser.parse_args().output_dir))


if __name__ == "__main__":
    main()
