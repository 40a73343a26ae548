"""DCN ranking model; the Trainer runs models.ranking.run_fn."""
from models.ranking.export import run_fn  # noqa: F401
