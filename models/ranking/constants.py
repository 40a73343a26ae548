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
# The listwise re-ranker (models/ranking/candidates.py, relations.py): what orders the
# retrieval model's candidates in serving.
NUM_CANDIDATES = 100  # candidates per training list (the pipeline passes the number it serves)
HOLDOUT = 0.2  # share of each training user's movies held out as the lists' positives
HOLDOUT_SEED = 7
EASE_LAMBDAS = (30.0, 100.0, 300.0, 1000.0, 3000.0)  # EASE's L2 weight: the best on the held-out movies
NEIGHBOURS = 200  # EASE weights kept per movie
LIST_CROSS_LAYERS = 1
LIST_DEEP_LAYERS = ()  # none: one Cross layer, then the score (chosen on validation lists)
LIST_BATCH_SIZE = 32  # lists per step
LIST_EPOCHS = 40  # at most; stops when the loss on a tenth of the lists stops improving
LIST_PATIENCE = 4
LIST_LEARNING_RATE = 0.01
