"""The `edgezoo` command, the end-to-end pipeline, the dashboard and the demos."""
