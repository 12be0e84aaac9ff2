"""Training RECNet: paired and synthetic data, losses, the training loop."""
