"""Hyper-parameters of the two-tower retrieval model (override with Trainer custom_config)."""
EMBEDDING_DIM = 64
LAYERS = [128]  # hidden layers of each tower's MLP, before the output of EMBEDDING_DIM
USE_HISTORY = True  # the query tower adds the mean embedding of the user's training movies
NEW_USERS = 0.1  # share of users each step trained as new ones: unknown id, history alone
TEMPERATURE = 0.05
NEGATIVES = "mixed"  # in_batch | uniform | hard | mixed (see models/retrieval/model.py)
NUM_SAMPLED = 512  # sampled negatives per batch, on top of the batch's own movies
NUM_HARD_NEGATIVES = 128  # with negatives="hard": negatives kept per query, the highest-scored
BATCH_SIZE = 1024
EPOCHS = 12  # at most; early stopping on the eval loss may end sooner
PATIENCE = 4
LEARNING_RATE = 0.01
MAX_HISTORY = 200  # most request-history movies per row the serving signatures take (INVALID_ARGUMENT past it)
