"""Two-tower retrieval model; the Trainer runs models.retrieval.model.run_fn."""
