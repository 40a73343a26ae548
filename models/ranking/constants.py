"""Hyper-parameters of the DCN ranking model (override any with the Trainer's custom_config)."""
EMBEDDING_DIM = 32
DEEP_LAYERS = (64, 32)
CROSS_LAYERS = 2  # 0 = the plain deep network of the same size
STRUCTURE = "stacked"  # "stacked": cross layers feed the deep network; "parallel": side by side
PROJECTION_DIM = None  # low-rank cross kernels (e.g. 16); None = full rank
RATING_WEIGHT = 1.0  # loss = RATING_WEIGHT * MSE(rating) + LIKED_WEIGHT * BCE(liked)
LIKED_WEIGHT = 0.5
NEGATIVE_WEIGHT = 1.0  # like-head loss weight of in-batch unrated pairs (0 = ratings only; model.py)
L2 = 1e-4  # L2 penalty on the embeddings
BATCH_SIZE = 1024
EPOCHS = 20  # at most; training stops when the eval RMSE stops improving
PATIENCE = 2  # epochs without improvement before stopping (0 = train all EPOCHS)
LEARNING_RATE = 0.005
# Transformed features the model reads, where Transform produces them. Time features are
# left out: serving_default takes ids only, so it has no timestamp to give the model.
USER_FEATURES = ("user_id", "user_age", "user_gender", "user_occupation", "user_zip")
MOVIE_FEATURES = ("movie_id", "movie_year", "movie_genres", "movie_title", "movie_tags")
RERANK_BY = "like_probability"  # orders retrieved candidates: "like_probability" or "rating" (+ "_fused")
