"""Training: data feeding, the loop, optimizers and schedules, checkpoints, metrics, DDP."""
