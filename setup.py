"""Installs the project into its virtual environment, so TFX components can name
functions by import path ('models.retrieval.model.run_fn'). Dependencies are pinned in
requirements.lock and installed by `make setup`, not here."""
from setuptools import find_packages, setup

setup(
    name="movielens-tfx-recsys",
    version="0.1.0",
    description="MovieLens recommender on TFX, TFRS, ScaNN and TF Serving.",
    python_requires=">=3.10,<3.12",
    packages=find_packages(include=["pipeline", "components", "models", "serving"]),
)
