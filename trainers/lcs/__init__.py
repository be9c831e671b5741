"""LCS (Nunez et al. 2110.04252): one line of networks from dense to 97.5 % unstructured sparsity."""
