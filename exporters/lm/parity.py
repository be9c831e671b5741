"""Export-time numeric verification of a language-model artifact against the torch model it was exported from.

Each format's plug-in runs its own library (onnxruntime, mlx-lm, coremltools) through two callables: `prefill`
(token ids (1, T) -> logits (1, T, V), starting a fresh KV cache) and `step` (the next ids (1, 1) -> logits, the cache
extended). On a fixed byte prompt the prefill logits are compared with torch's (max abs error, SQNR, top-1 agreement:
`exporters.verify.numeric_parity`, the thresholds the vision exports use), and a few greedy tokens with torch's
KV-cached `generate`. Uncompressed artifacts must produce torch's tokens exactly; quantized or SeedLM ones may
differ (their agreement is recorded, `ok` rests on the logits)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from exporters.verify import numeric_parity

PROMPT = b"def add(a, b):\n    return a + b\n"
GREEDY_TOKENS = 8
Step = Callable[[np.ndarray], np.ndarray]


def byte_prompt(vocab_size: int) -> np.ndarray:
    """The fixed prompt as token ids (1, T) of a byte vocabulary (folded into a smaller one)."""
    return (np.frombuffer(PROMPT, dtype=np.uint8).astype(np.int64) % vocab_size)[None]


@torch.no_grad()
def lm_parity(model: Any, prefill: Step, step: Step, runtime: str, exact: bool,
              max_new_tokens: int = GREEDY_TOKENS) -> dict[str, Any]:
    """The verification entry: prefill parity + greedy tokens of the artifact (`prefill`, `step`) against `model`.
    `exact`: the greedy tokens must equal torch's for `ok` (uncompressed exports)."""
    from models.generation.generate import generate, generate_step

    model = model.eval()
    prompt = byte_prompt(model.args.vocab_size)
    ref = model(torch.from_numpy(prompt)).float().numpy()[0]
    ref_tokens = generate(model, torch.from_numpy(prompt), max_new_tokens).numpy()[0]
    numeric = numeric_parity(np.asarray(prefill(prompt))[0], ref)
    tokens = np.stack(list(generate_step(step, prompt, max_new_tokens, prefill=prefill)), 1)[0]
    match = bool(np.array_equal(tokens, ref_tokens))
    return {"kind": "numeric", "runtime": runtime, **numeric, "prompt": PROMPT.decode(),
            "greedy_tokens": [int(t) for t in tokens], "torch_tokens": [int(t) for t in ref_tokens],
            "greedy_match": match, "greedy_agreement": float(np.mean(tokens == ref_tokens)),
            "greedy_exact_required": exact, "ok": bool(numeric["ok"] and (match or not exact))}


def exact_required(artifact: Any) -> bool:
    """Only an uncompressed export must reproduce torch's greedy tokens exactly."""
    return (artifact.manifest.get("compression") or {}).get("method", "none") == "none"
