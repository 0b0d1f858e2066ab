"""Training the reward channel and head on a frozen policy (REFERENCE §2): features, losses, metrics, loop."""
