"""`generate_step`: prefill once, then decode token by token, yielding each token (mlx-lm's `generate.py`). One loop
for the torch model (`generate`), every runtime's LM side (`profiles.runtimes.base.Runtime.greedy`) and the
speculative decoder's draft, verifier-view and plain baselines. It works on numpy and torch arrays alike and
imports no array library itself."""

from __future__ import annotations

from typing import Any, Callable, Iterator

Step = Callable[[Any], Any]     # tokens (B, T) -> logits (B, T, V); the step keeps the KV cache
Sampler = Callable[[Any], Any]  # last-position logits (B, V) -> next ids (B,)


def greedy(logits: Any) -> Any:
    """The argmax sampler (the first maximum on ties, in numpy and torch alike)."""
    return logits.argmax(-1)


def generate_step(step_fn: Step, prompt: Any, max_tokens: int, *, sampler: Sampler | None = None,
                  prefill: Step | None = None) -> Iterator[Any]:
    """Yield `max_tokens` next ids (B,) after `prompt` (B, T): `prefill` (default `step_fn`) runs on the prompt once,
    then `step_fn` on each sampled token (B, 1). A token's decode pass runs when the next token is asked for, so
    nothing runs past the last one and the time between two yields is one decode step plus sampling."""
    if max_tokens <= 0:
        return
    sampler = sampler or greedy
    token = sampler((prefill or step_fn)(prompt)[:, -1])
    yield token
    for _ in range(max_tokens - 1):
        token = sampler(step_fn(token[:, None])[:, -1])
        yield token


def cached_step(model: Any, cache: Any, pad: Any = None) -> Step:
    """A step over `model.forward_cached(tokens, past, pad)` that reads `cache.view()` and appends what the pass
    adds (`cache`: a `models.generation.cache.Cache`). `pad` (B,) counts each row's left padding."""
    def step(tokens: Any) -> Any:
        logits, new = model.forward_cached(tokens, cache.view(), pad)
        cache.append(new, tokens.shape[1])
        return logits
    return step


def generate(model: Any, prompt: Any, max_new_tokens: int, temperature: float = 0.0, top_k: int = 0,
             top_p: float = 1.0, seed: int | None = None, pad: Any = None) -> Any:
    """KV-cached generation with a torch model (`forward_cached`). prompt (B, T) (left-padded when `pad` is given) ->
    new tokens (B, max_new_tokens). Temperature 0 = greedy; `seed` fixes the draws (else torch's global generator)."""
    import torch

    from models.generation.cache import FpKVCache
    from models.generation.sampling import make_sampler

    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    sampler = make_sampler(temperature, top_k, top_p, gen)
    with torch.no_grad():
        return torch.stack(list(generate_step(cached_step(model, FpKVCache(), pad), prompt, max_new_tokens,
                                              sampler=sampler)), 1)
