"""Datasets that sagegate can build offline (no download)."""
