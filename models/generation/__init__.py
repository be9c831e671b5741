"""Generation, in one place for every model and runtime (the shape of mlx-lm's `sample_utils.py`, `models/cache.py`
and `generate.py`): `sampling` (the one sampling filter and the samplers built on it), `cache` (the KV-cache
protocol and the plain full-precision cache), `generate` (`generate_step` and the step functions it drives),
`prompt` (the checks a byte prompt passes before generation).

Kept import-light: `generate` imports no torch, so a runtime's measuring child only loads what its runtime needs.
"""
