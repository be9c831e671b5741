"""Profiling: runtimes, the child-process measurement harness, statistics and the results store."""
