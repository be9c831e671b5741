"""OpenELM byte-level LM recipe (card 01) and the claims of cards 01 (layer-wise scaling) and 03 (SeedLM)."""
