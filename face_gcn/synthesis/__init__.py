"""Synthetic training data rendered from a morphable model (sits above data/ and render/)."""
