# make demo: the whole system on MovieLens 100K.  make test: lint, then the test suite.
# Both build .venv from requirements.lock first (make setup).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
SHARED_ML100K := $(abspath ../shared/data/movielens/ml-100k)
# Use the machine's shared copy of ml-100k when there is one; otherwise the demo downloads it.
export MOVIELENS_DIR ?= $(if $(wildcard $(SHARED_ML100K)/u.data),$(SHARED_ML100K),)

RUFF_VERSION := 0.8.4

.PHONY: setup demo test lint lock clean bench-scale bench-index bench-serving bench-ranking bench-quality bench-ingest \
	bench-cold-start bench-pipeline

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.lock setup.py Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(UV) pip install --python $(PY) --quiet --no-deps -r requirements.lock
	$(UV) pip install --python $(PY) --quiet --no-deps -e .
	$(UV) pip install --python $(PY) --quiet ruff==$(RUFF_VERSION)
	touch $@

demo: setup
	$(PY) demo.py

test: lint
	$(PY) -m pytest tests

# ruff (ruff.toml): pyflakes, pycodestyle, import order, bugbear.
lint: setup
	$(VENV)/bin/ruff check .

# Re-resolve requirements.in (TFX 1.16 declares Python < 3.11, so resolve as for 3.10;
# overrides.txt says why protobuf and kfp-pipeline-spec are pinned over their declarations).
lock: setup
	$(UV) pip compile requirements.in --override overrides.txt --python-version 3.10 \
		--python-platform x86_64-manylinux_2_28 -o requirements.lock

clean:
	rm -rf outputs .pytest_cache

# Pipeline cost against data size (benchmarks/results/scale.{json,png}); about an hour.
bench-scale: setup
	$(PY) -m benchmarks.scale --sizes 100000 1000000 5000000

# ScaNN against brute force on 1M synthetic items (benchmarks/results/index.{json,png}); minutes.
bench-index: setup
	$(PY) -m benchmarks.index

# Recommendation latency and throughput over gRPC on the pushed models (make demo first);
# benchmarks/results/serving.{json,png}; a few minutes.
bench-serving: setup
	$(PY) -m benchmarks.serving

# Rating RMSE on ML-100K: global mean, biased MF, DNN, DCN (benchmarks/results/ranking.json);
# about half an hour on 2 cores.
bench-ranking: setup
	$(PY) -m benchmarks.ranking

# What users get on ML-100K: the served answer over gRPC beside popularity, EASE and retrieval
# alone (benchmarks/results/quality.json); runs the pipeline, about 20 minutes on 2 cores.
bench-quality: setup
	$(PY) -m benchmarks.quality

# New users from the n movies they give at request time, over gRPC, beside popularity and EASE
# folded in (benchmarks/results/cold_start.{json,png}); runs the pipeline, about 25 minutes on 2 cores.
bench-cold-start: setup
	$(PY) -m benchmarks.cold_start

# Wall time of the data stages (ExampleGen .. Transform) on ML-100K, 3 runs
# (benchmarks/results/ingest.json).
bench-ingest: setup
	$(PY) -m benchmarks.pipeline --until Transform --runs 3

# The demo on ML-100K from nothing, again unchanged (from the cache) and after a ranking-only
# change, each stage's wall time from ML Metadata (benchmarks/results/pipeline.json); ~20 minutes.
bench-pipeline: setup
	rm -rf outputs/bench-pipeline && $(PY) -m benchmarks.pipeline --output-dir outputs/bench-pipeline
