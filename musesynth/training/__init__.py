"""Training: config, the loop, checkpoints that resume exactly, and DDP across GPUs and nodes."""
