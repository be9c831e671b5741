"""Learning Neural Network Subspaces (Wortsman et al. 2102.10472): lines of accurate networks, BN recalibration."""
