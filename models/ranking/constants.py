"""Hyper-parameters of the DCN ranking model (override with Trainer custom_config)."""
EMBEDDING_DIM = 32
DEEP_LAYERS = (64, 32)
BATCH_SIZE = 1024
EPOCHS = 8
LEARNING_RATE = 0.01
