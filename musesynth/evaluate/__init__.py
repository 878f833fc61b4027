"""Evaluation: test-set likelihood, n-gram baselines and musical statistics."""
