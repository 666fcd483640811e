"""Evaluation of a trained VAE: importance-sampled and exact likelihoods, the ELBO decomposition,
holes of the aggregated posterior, and the quality of prior samples.

`metrics.evaluate` takes Distribution-returning callables and a prior Distribution, so it works
for any model with that interface; `runner.evaluate_test_set` runs it on a run's test split.
"""
