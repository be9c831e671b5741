"""SPIN (arXiv 2207.10237): cross-layer weight sharing for isotropic nets, weight fusion, small-scale claim."""
