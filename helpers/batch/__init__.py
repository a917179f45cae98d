"""Batched SCRFD: any export rewritten to a dynamic batch, and the pipeline at batch N."""
