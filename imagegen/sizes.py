"""Moved to :mod:`imagegen.providers.gemini` (kept until the callers move)."""

from .providers.gemini import ASPECTS, QUALITIES, tier_size as pixel_size, validate_aspect, validate_quality

__all__ = ["ASPECTS", "QUALITIES", "pixel_size", "validate_aspect", "validate_quality"]
