"""QuantSpec (arXiv 2502.10424): self-speculative decoding with a hierarchical quantized KV cache, small-scale claim."""
