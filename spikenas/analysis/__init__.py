"""``spikenas analyze``: SpikeNAS's operation-impact analysis and enhanced space (steps 1 and 2),
the validation of the training-free scores, and the found network against random ones."""

from spikenas.analysis.settings import STUDIES, ProxyRecipe, Studies

__all__ = ["STUDIES", "ProxyRecipe", "Studies"]
