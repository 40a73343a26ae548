"""Two-tower retrieval model; the Trainer runs models.retrieval.run_fn."""
from models.retrieval.model import run_fn  # noqa: F401
