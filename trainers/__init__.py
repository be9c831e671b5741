"""Training: one loop, recipes in YAML, offline datasets."""
