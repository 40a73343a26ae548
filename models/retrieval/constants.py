"""Hyper-parameters of the two-tower retrieval model (override with Trainer custom_config)."""
EMBEDDING_DIM = 64
TEMPERATURE = 0.1
BATCH_SIZE = 1024
EPOCHS = 8
LEARNING_RATE = 0.05
NUM_CANDIDATES = 100  # movies the exported index returns per user
