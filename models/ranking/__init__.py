"""DCN ranking model; the Trainer runs models.ranking.export.run_fn."""
