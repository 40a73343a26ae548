"""DCN ranking model; the Trainer runs models.ranking.run_fn."""
from models.ranking.model import run_fn  # noqa: F401
