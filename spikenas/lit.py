"""The names that ``final.yaml`` files written by spikenas 0.1 use: ``model.scheduler:
spikenas.lit.cosine``. The classifier lives in :mod:`spikenas.train.classifier`; this module
keeps those files training as they are (tests/test_cli_fit.py checks one)."""

from spikenas.train.classifier import SNNClassifier, cosine

__all__ = ["SNNClassifier", "cosine"]
