"""Group-wise round-to-nearest for LM linears (the SeedLM comparators, the LM's int8/int4 specs, the QuantSpec
draft). The implementation lives with the one RTN in models/layers/quant.py, where models/ can use it too.

Honest bits: symmetric stores one fp16 scale per group (bits + 16/group); asymmetric one fp16 scale and one fp16
zero point (bits + 32/group). Scales and zeros are rounded to fp16 before use, as stored.
"""

from models.layers.quant import lm_linear_names, rtn_, rtn_groupwise  # noqa: F401
