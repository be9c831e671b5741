"""Checks a byte prompt passes before generation: a byte vocabulary, encodable text, the model's context. `args` is
any object with `vocab_size` and `max_context_length` (an OpenELM `ModelArgs`)."""

from __future__ import annotations

from typing import Any

from models.errors import EdgeZooError


def require_byte_vocab(args: Any, tokenizer: str | None = None) -> None:
    """Text in and out of EdgeZoo goes through the byte tokenizer (ids 0..255): only a 256-token vocabulary fits it.
    An imported upstream OpenELM (Llama-2 tokenizer, 32,000 tokens) does not."""
    if args.vocab_size != 256:
        raise EdgeZooError(f"the model has a {args.vocab_size:,}-token vocabulary (tokenizer: "
                           f"{tokenizer or 'not bytes'}), and the byte tokenizer cannot encode for it",
                           "use a byte-level LM (vocabulary 256) made by `edgezoo lm train`; an upstream model needs "
                           "its own tokenizer, which EdgeZoo does not bundle")


def check_context(args: Any, prompt_len: int, new_tokens: int = 0) -> None:
    """A prompt of `prompt_len` bytes followed by `new_tokens` generated ones must fit the model's context."""
    room = args.max_context_length
    if prompt_len < 1:
        raise EdgeZooError("the prompt is empty", "give at least one character of prompt")
    if prompt_len + new_tokens > room:
        ways = ([f"shorten the prompt to at most {room - new_tokens:,} bytes"] if new_tokens < room else []) + (
            [f"ask for at most {room - prompt_len:,} new tokens"] if new_tokens and prompt_len < room else [])
        fix = " or ".join(ways) or f"shorten the prompt and ask for fewer than {room:,} new tokens"
        plus = f" plus {new_tokens:,} new tokens" if new_tokens else ""
        raise EdgeZooError(f"a {prompt_len:,}-byte prompt{plus} exceeds the model's context of "
                           f"{room:,} tokens", fix)


def byte_prompt(args: Any, text: str, new_tokens: int, tokenizer: str | None = None) -> list[int]:
    """`text` as byte ids for a generation of `new_tokens`, after every check that needs no tensor: a byte vocabulary,
    encodable text (argv bytes that are not UTF-8 come back as they were typed), the model's context."""
    require_byte_vocab(args, tokenizer)
    try:
        ids = list(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError as e:
        raise EdgeZooError(f"the prompt cannot be encoded as UTF-8 ({e.reason} at character {e.start})",
                           "pass plain text") from None
    check_context(args, len(ids), new_tokens)
    return ids
