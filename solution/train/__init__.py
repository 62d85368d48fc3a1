"""Training: the fold loop, the model folders it writes, the job scheduler and the time budget."""
