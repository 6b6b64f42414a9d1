"""Shared training infrastructure: experiment configs and a generic training loop."""
