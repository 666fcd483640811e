"""One training run and what keeps it going: `fit.run`, its callbacks, checkpoints that survive a
signal, resuming, the epoch lines and the experiment trackers."""
