# The pipeline image for Kubeflow Pipelines / Vertex AI: the TFX 1.16 image (Python 3.10,
# the version requirements.lock is resolved for) with this project installed, so
# components find 'models.retrieval.run_fn' and friends by import path.
#   docker build -t gcr.io/PROJECT/movielens-recsys:latest . && docker push gcr.io/PROJECT/movielens-recsys:latest
FROM tensorflow/tfx:1.16.0

ENV TF_USE_LEGACY_KERAS=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /pipeline
COPY requirements.lock setup.py ./
RUN pip install --no-deps -r requirements.lock
COPY pipeline/ pipeline/
COPY components/ components/
COPY models/ models/
COPY serving/ serving/
RUN pip install --no-deps -e .
