"""Training the reward channel and head on a frozen policy (docs/background.md#reward-transformer): features,
losses, metrics, loop."""
