"""`edgezoo demo specdec`: a local Gradio app that streams QuantSpec self-speculative decoding of a zoo byte LM.

Accepted draft tokens, verifier corrections and bonus tokens are coloured apart; the same prompt is then decoded
without speculation (the engine's `plain_stream`) so both speeds sit side by side. Runs are queued one at a time
and tokens/s counts only the time spent inside the engine (page updates excluded), so the speed-up is fair.
"""

from __future__ import annotations

import codecs
import html
import json
import math
import os
import sys
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from app.workspace import Workspace
from models.errors import EdgeZooError

OFFLINE_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1"}
GAMMA_RANGE = (1, 16)
MAX_NEW_TOKENS = 512
MAX_PROMPT_CHARS = 1 << 20  # checked before encoding; the model's context (far smaller) is checked after
KINDS = ("accepted", "corrected", "bonus", "plain")
TRAIN_HINT = "train one with `edgezoo lm train`"
SPEED_NOTE = ("Speculation pays when a pass is bound by memory traffic (long contexts, large models); for a small "
              "model on a CPU a draft pass costs nearly as much as a verifier pass (see c), so expect little gain.")

TOKEN_CSS = """
.ez-tokens { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; white-space: pre-wrap;
             word-break: break-word; line-height: 1.6; padding: 8px; border-radius: 6px; min-height: 3em; }
.ez-tokens .tok-prompt { color: #6b7280; }
.ez-tokens .tok-accepted { background: #bbf7d0; color: #14532d; }
.ez-tokens .tok-corrected { background: #fecaca; color: #7f1d1d; text-decoration: underline wavy; }
.ez-tokens .tok-bonus { background: #bfdbfe; color: #1e3a8a; font-weight: 600; }
.ez-tokens .tok-plain { background: #e5e7eb; color: #111827; }
.ez-legend span { margin-right: 1em; padding: 0 4px; border-radius: 3px; }
.ez-legend .tok-accepted { background: #bbf7d0; } .ez-legend .tok-corrected { background: #fecaca; }
.ez-legend .tok-bonus { background: #bfdbfe; } .ez-legend .tok-plain { background: #e5e7eb; }
.ez-error { color: #991b1b; background: #fef2f2; border: 1px solid #fca5a5; padding: 8px; border-radius: 6px; }
.ez-stats td { padding: 1px 10px 1px 0; } .ez-stats td:first-child { color: #6b7280; }
"""
LEGEND = {"speculative": '<div class="ez-legend"><span class="tok-accepted">accepted draft</span>'
                         '<span class="tok-corrected">verifier correction</span><span class="tok-bonus">bonus</span></div>',
          "plain": '<div class="ez-legend"><span class="tok-plain">plain decoding (no speculation)</span></div>'}


# --------------------------------------------------------------------------- checkpoints


def lm_checkpoints(zoo: Path) -> dict[str, Path]:
    """{path relative to the zoo: folder} for every checkpoint under `zoo` whose card.json says task "lm"."""
    out: dict[str, Path] = {}
    for card_path in sorted(zoo.rglob("card.json")) if zoo.is_dir() else []:
        try:
            card = json.loads(card_path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(card, dict) and card.get("task") == "lm":
            out[card_path.parent.relative_to(zoo).as_posix()] = card_path.parent
    return out


class DecoderCache:
    """One QuantSpecDecoder per checkpoint, rebuilt when its weights file changes."""

    def __init__(self, zoo: Path) -> None:
        self.zoo = zoo
        self._items: dict[Path, tuple[int, Any]] = {}
        self._lock = threading.Lock()

    def folder(self, name: str) -> Path:
        folder = lm_checkpoints(self.zoo).get(name)
        if folder is None:
            raise EdgeZooError(f"no LM checkpoint {name!r} in {self.zoo}",
                               f"pick one from the list (press Refresh) or {TRAIN_HINT}")
        return folder

    def args(self, name: str) -> tuple[Any, str | None]:
        """(ModelArgs, tokenizer) from the checkpoint's card: what it can take, known without loading it."""
        from models.checkpoint import read_card
        from models.openelm import ModelArgs
        from models.registry import args_from_dict

        card = read_card(self.folder(name))
        try:
            return args_from_dict(ModelArgs, card["args"]), card.get("tokenizer")
        except (TypeError, ValueError) as e:
            raise EdgeZooError(f"the card of {name!r} has unusable model args ({e})",
                               "retrain or re-import it") from None

    def get(self, name: str) -> Any:
        folder = self.folder(name)
        weights = folder / "model.safetensors"
        stamp = weights.stat().st_mtime_ns if weights.exists() else -1
        with self._lock:
            hit = self._items.get(folder)
            if hit is None or hit[0] != stamp:
                hit = (stamp, self._build(folder))
                self._items[folder] = hit
            return hit[1]

    @staticmethod
    def _build(folder: Path) -> Any:
        from models import checkpoint
        from models.speculative import QuantSpecDecoder

        return QuantSpecDecoder(checkpoint.load_lm(folder)[0])


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Request:
    checkpoint: str
    prompt: list[int]
    gamma: int
    max_new_tokens: int
    temperature: float
    top_k: int
    top_p: float
    seed: int | None


def _number(value: Any, name: str, lo: float, hi: float, integer: bool) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise EdgeZooError(f"{name} must be a number, got {value!r}", f"enter a value in [{lo:g}, {hi:g}]") from None
    if not math.isfinite(x) or not lo <= x <= hi or (integer and x != int(x)):
        kind = "an integer" if integer else "a number"
        raise EdgeZooError(f"{name} = {value!r} is out of range", f"enter {kind} in [{lo:g}, {hi:g}]")
    return int(x) if integer else x


def parse_request(prompt: str | None, checkpoint: str | None, gamma: Any, max_new_tokens: Any, temperature: Any,
                  top_k: Any, top_p: Any, seed: Any) -> Request:
    """Validate the form; every problem is an EdgeZooError shown in the page."""
    from models.generation.sampling import check_temperature
    from trainers.text import encode

    if not checkpoint:
        raise EdgeZooError("no checkpoint selected", f"pick an LM checkpoint from the list or {TRAIN_HINT}")
    if not prompt:
        raise EdgeZooError("the prompt is empty", "type some text to continue")
    if seed is not None and seed != "":
        seed = _number(seed, "seed", 0, 2**63 - 1, True)
    if len(prompt) > MAX_PROMPT_CHARS:  # before encoding: no model takes this much
        raise EdgeZooError(f"the prompt has {len(prompt):,} characters", f"keep it under {MAX_PROMPT_CHARS:,}")
    temperature = _number(temperature, "temperature", 0.0, 10.0, False)
    check_temperature(temperature)
    return Request(str(checkpoint), encode(prompt), _number(gamma, "draft length γ", *GAMMA_RANGE, True),
                   _number(max_new_tokens, "max new tokens", 1, MAX_NEW_TOKENS, True), temperature,
                   _number(top_k, "top-k", 0, 256, True), _number(top_p, "top-p", 1e-6, 1.0, False),
                   None if seed in (None, "") else seed)


def check_fits(req: Request, args: Any, tokenizer: str | None) -> None:
    """The request against the model, before any tensor is built: a byte vocabulary, and prompt bytes + new tokens
    within the model's context (a 100 KB prompt once asked the engine for 40 GB)."""
    from models.generation.prompt import check_context, require_byte_vocab

    require_byte_vocab(args, tokenizer)
    check_context(args, len(req.prompt), req.max_new_tokens)


def input_limits(args: Any) -> dict[str, int]:
    """What the page lets one type for a model: the prompt box and the new-tokens slider, both within its context."""
    ctx = int(args.max_context_length)
    return {"context": ctx, "max_new_tokens": max(1, min(MAX_NEW_TOKENS, ctx - 1)), "prompt_chars": max(1, ctx - 1)}


def limits_message(lim: dict[str, int] | None) -> str:
    if lim is None:
        return ""
    return (f"This model's context is **{lim['context']:,} tokens**: prompt bytes + max new tokens must fit in it "
            f"(at most {lim['max_new_tokens']:,} new tokens; a longer prompt is refused with a message, not run).")


# --------------------------------------------------------------------------- rendering


class TokenView:
    """Coloured spans for a byte stream; a multi-byte UTF-8 character lands in the span of its last byte and an
    invalid byte shows as an escape (\\xNN)."""

    def __init__(self, prompt: list[int], mode: str) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")("backslashreplace")
        self.legend = LEGEND[mode]
        self.spans = [f'<span class="tok-prompt">{html.escape(self._utf8.decode(bytes(prompt)))}</span>']
        self.ids: list[int] = []
        self.counts: Counter[str] = Counter()

    def add(self, tokens: Iterable[int], kinds: Iterable[str]) -> None:
        for t, kind in zip(tokens, kinds):
            kind = kind if kind in KINDS else "plain"
            text = html.escape(self._utf8.decode(bytes([int(t)])))
            self.spans.append(f'<span class="tok-{kind}" title="{kind} 0x{int(t):02x}">{text}</span>')
            self.ids.append(int(t))
            self.counts[kind] += 1

    def html(self, final: bool = False) -> str:
        tail = html.escape(self._utf8.decode(b"", final=True)) if final else ""
        return f'{self.legend}<div class="ez-tokens">{"".join(self.spans)}{tail}</div>'


def error_html(err: Exception) -> str:
    return f'<div class="ez-error" role="alert"><b>Error:</b> {html.escape(str(err))}</div>'


def _clean(x: Any) -> Any:
    """JSON-safe copy: NaN/inf become None."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def _kib(n: int | None) -> str:
    return "–" if n is None else f"{n / 1024:,.1f} KiB"


def _fmt(x: float | None, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _ideal_speedup(alpha: float | None, gamma: int, c: float | None) -> float | None:
    """The card's (1 - α^(γ+1)) / ((1 - α)(γc + 1)): what speculation could give at this α and cost ratio."""
    from models.speculative import analytic_speedup

    return None if alpha is None or c is None else analytic_speedup(alpha, gamma, c)


def _time_split(s: dict[str, Any]) -> str:
    """Where the speculative wall time went: the ideal speed-up ignores the last part (cache quantization, views,
    rollback, sampling), which is why a measured speed-up can sit far below it."""
    total = s.get("seconds") or 0.0
    if total <= 0:
        return "–"
    parts = {k: s.get(f"{k}_seconds") or 0.0 for k in ("prefill", "draft", "verify")}
    parts["bookkeeping"] = max(total - sum(parts.values()), 0.0)
    return " · ".join(f"{k} {100 * v / total:.0f} %" for k, v in parts.items())


def stats_html(r: dict[str, Any]) -> str:
    s, kv = r["stats"], r["kv_cache_bytes"]
    rows = [("new tokens", f'{r["new_tokens"]} of {r["max_new_tokens"]}' + ("" if r["done"] else " …")),
            ("tokens/s", _fmt(r["tokens_per_s"], ",.1f")),
            ("decode time", f'{r["decode_seconds"]:.3f} s (prefill included, page updates excluded)')]
    if r["mode"] == "speculative":
        per_pos = [a / d if d else None for a, d in zip(s.get("per_position_accepted") or [],
                                                        s.get("per_position_drafted") or [])]
        rows += [("acceptance rate", f'{_pct(s.get("acceptance_rate"))} ({s.get("accepted")}/{s.get("drafted")} drafts)'),
                 ("per-token acceptance α", _pct(s.get("token_acceptance"))),
                 ("verifier passes / token", _fmt(s.get("verify_passes_per_token"), ".3f")),
                 ("accepted drafts / verifier pass", _fmt(s.get("accepted_per_verify"), ".2f")),
                 ("per-position acceptance", ", ".join(_pct(p) for p in per_pos) or "–"),
                 ("draft / verifier pass cost c", _fmt(s.get("cost_ratio"), ".2f")),
                 ("ideal speed-up (α, γ, c)", _fmt(_ideal_speedup(s.get("token_acceptance"), r["gamma"],
                                                                 s.get("cost_ratio")), ".2f")),
                 ("time split", _time_split(s)),
                 ("token kinds", ", ".join(f"{k} {r['kinds'].get(k, 0)}" for k in KINDS[:3])),
                 (f'KV cache @ {r["context"]} tokens', f'QuantSpec {_kib(kv.get("quantspec"))} '
                  f'(draft reads {_kib(kv.get("draft_reads"))}) · fp16 {_kib(kv.get("fp16"))} · '
                  f'fp32 {_kib(kv.get("fp32"))}')]
    else:
        rows += [("verifier passes / token", "1 (one fp32 forward pass per token)"),
                 (f'KV cache @ {r["context"]} tokens', f'fp32 {_kib(kv.get("fp32"))}')]
    body = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="ez-stats">{body}</table>'


def compare_html(spec: dict[str, Any] | None, plain: dict[str, Any] | None) -> str:
    """Both speeds, the speed-up and whether the two texts agree."""
    if not spec or not plain or spec.get("error") or plain.get("error") or not (spec.get("done") and plain.get("done")):
        return ""
    a, b = spec.get("tokens_per_s"), plain.get("tokens_per_s")
    ratio = f"{a / b:.2f}×" if a and b else "–"
    same = spec["text"] == plain["text"]
    if spec["temperature"] > 0:
        note = "Sampled (temperature > 0): the two texts are independent draws and need not match."
    elif same:
        note = "Greedy: both texts are identical."
    else:
        i = next((k for k, (x, y) in enumerate(zip(spec["token_ids"], plain["token_ids"])) if x != y),
                 min(len(spec["token_ids"]), len(plain["token_ids"])))
        note = (f"Greedy: the texts part at generated byte {i}. Speculative output is exact with respect to the "
                "verifier view (INT8 KV cache), not the fp32 model, so near-ties can flip.")
    return (f'<p><b>Speculative</b> {a or 0:,.1f} tok/s · <b>plain</b> {b or 0:,.1f} tok/s · '
            f'<b>speed-up</b> {ratio}</p><p>{html.escape(note)} {SPEED_NOTE}</p>')


# --------------------------------------------------------------------------- streaming handlers


class SpecDemo:
    """The handlers behind the page (plain Python, testable without a server)."""

    def __init__(self, workspace: Workspace, min_interval: float = 0.05) -> None:
        self.ws = workspace
        self.cache = DecoderCache(workspace.zoo)
        self.min_interval = min_interval

    def models(self) -> list[str]:
        return list(lm_checkpoints(self.ws.zoo))

    def no_models_message(self) -> str:
        return "" if self.models() else f"**No LM checkpoint in `{self.ws.zoo}`:** {TRAIN_HINT}."

    def limits(self, checkpoint: str | None) -> dict[str, int] | None:
        """The selected checkpoint's input limits (None when none is selected or its card is unusable)."""
        try:
            return input_limits(self.cache.args(checkpoint)[0]) if checkpoint else None
        except EdgeZooError:
            return None

    def speculative(self, prompt: str, checkpoint: str | None, gamma: float, max_new_tokens: float,
                    temperature: float, top_k: float, top_p: float, seed: float | None
                    ) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Stream QuantSpec decoding: (tokens HTML, stats HTML, result dict)."""
        yield from self._run("speculative", prompt, checkpoint, gamma, max_new_tokens, temperature, top_k, top_p, seed)

    def plain(self, prompt: str, checkpoint: str | None, max_new_tokens: float, temperature: float, top_k: float,
              top_p: float, seed: float | None) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Stream plain autoregressive decoding of the fp32 model: (tokens HTML, stats HTML, result dict)."""
        yield from self._run("plain", prompt, checkpoint, 1, max_new_tokens, temperature, top_k, top_p, seed)

    def _run(self, mode: str, *form: Any) -> Iterator[tuple[str, str, dict[str, Any]]]:
        try:
            req = parse_request(*form)
            check_fits(req, *self.cache.args(req.checkpoint))
            decoder = self.cache.get(req.checkpoint)
            view, stats, seconds, last = TokenView(req.prompt, mode), None, 0.0, 0.0
            for ev, seconds in _timed(self._events(decoder, mode, req)):
                view.add(ev.tokens, ev.kinds)
                stats = ev.stats
                if time.monotonic() - last >= self.min_interval:
                    last = time.monotonic()
                    result = self._result(mode, req, decoder, view, stats, seconds, done=False)
                    yield view.html(), stats_html(result), result
            if stats is None:
                raise EdgeZooError("the engine produced no tokens", "raise max new tokens")
            result = self._result(mode, req, decoder, view, stats, seconds, done=True)
            yield view.html(final=True), stats_html(result), result
        except Exception as err:  # anything the engine raises is shown in the page, never as a traceback
            if not isinstance(err, (EdgeZooError, ValueError)):
                traceback.print_exc(file=sys.stderr)
                err = EdgeZooError(f"{type(err).__name__}: {err}", "see the server log")
            yield error_html(err), "", {"mode": mode, "error": str(err), "done": True}

    @staticmethod
    def _events(decoder: Any, mode: str, req: Request) -> Iterator[Any]:
        sampling = dict(temperature=req.temperature, top_k=req.top_k, top_p=req.top_p, seed=req.seed)
        if mode == "plain":
            return decoder.plain_stream(req.prompt, req.max_new_tokens, **sampling)
        return decoder.stream(req.prompt, req.max_new_tokens, gamma=req.gamma, **sampling)

    @staticmethod
    def _result(mode: str, req: Request, decoder: Any, view: TokenView, stats: Any, seconds: float,
                done: bool) -> dict[str, Any]:
        from trainers.text import decode

        context = len(req.prompt) + len(view.ids)
        return _clean({
            "mode": mode, "checkpoint": req.checkpoint, "done": done, "text": decode(view.ids),
            "token_ids": list(view.ids), "kinds": dict(view.counts), "new_tokens": len(view.ids),
            "max_new_tokens": req.max_new_tokens, "gamma": req.gamma if mode == "speculative" else None,
            "temperature": req.temperature, "decode_seconds": seconds,
            "tokens_per_s": len(view.ids) / seconds if seconds > 0 else None,
            "stats": stats.to_dict(), "context": context, "kv_cache_bytes": dict(decoder.kv_cache_bytes(context))})


def _timed(events: Iterator[Any]) -> Iterator[tuple[Any, float]]:
    """Yield (event, seconds spent inside the engine so far): time spent rendering between events is not counted."""
    total = 0.0
    while True:
        t0 = time.perf_counter()
        try:
            ev = next(events)
        except StopIteration:
            return
        total += time.perf_counter() - t0
        yield ev, total


# --------------------------------------------------------------------------- the page


def _gradio() -> Any:
    os.environ.update(OFFLINE_ENV)  # before gradio (and huggingface_hub) read them at import
    import gradio as gr

    return gr


def build_demo(workspace: Workspace | str | Path | None, min_interval: float = 0.05) -> Any:
    """The Blocks app. API: /generate and /plain (streaming), /compare, /models."""
    gr = _gradio()
    ws = workspace if isinstance(workspace, Workspace) else Workspace.resolve(workspace)
    h = SpecDemo(ws, min_interval)
    names = h.models()
    first = h.limits(names[0] if names else None)
    lim = first or {"max_new_tokens": MAX_NEW_TOKENS, "prompt_chars": MAX_PROMPT_CHARS}
    with gr.Blocks(title="EdgeZoo · QuantSpec speculative decoding", analytics_enabled=False) as demo:
        gr.Markdown("## QuantSpec self-speculative decoding\nThe draft is the same network with 4-bit weights "
                    "reading a 4-bit view of a hierarchical KV cache; the verifier reads the 8-bit view. "
                    "Runs are queued one at a time.")
        missing = gr.Markdown(h.no_models_message())
        with gr.Row():
            ckpt = gr.Dropdown(names, value=names[0] if names else None, label="LM checkpoint (workspace zoo)",
                               allow_custom_value=True, scale=4)  # checked against the zoo per request
            refresh = gr.Button("Refresh", scale=1)
        prompt = gr.Textbox(label="Prompt", lines=3, value="The ", max_length=lim["prompt_chars"])
        limit_note = gr.Markdown(limits_message(first))
        with gr.Row():
            gamma = gr.Slider(*GAMMA_RANGE, value=4, step=1, label="draft length γ")
            max_new = gr.Slider(1, lim["max_new_tokens"], value=min(128, lim["max_new_tokens"]), step=1,
                                label="max new tokens")
            seed = gr.Number(0, precision=0, label="seed (empty: random)")
        with gr.Row():
            temperature = gr.Slider(0.0, 2.0, value=0.0, step=0.05, label="temperature (0 = greedy)")
            top_k = gr.Slider(0, 256, value=0, step=1, label="top-k (0 = off)")
            top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="top-p")
        go = gr.Button("Generate", variant="primary")
        with gr.Row():
            with gr.Column():
                gr.Markdown("### QuantSpec (speculative)")
                spec_html, spec_stats = gr.HTML(css_template=TOKEN_CSS), gr.HTML(css_template=TOKEN_CSS)
            with gr.Column():
                gr.Markdown("### Plain autoregressive (fp32, no speculation)")
                plain_html, plain_stats = gr.HTML(css_template=TOKEN_CSS), gr.HTML(css_template=TOKEN_CSS)
        comparison = gr.HTML()
        with gr.Accordion("Raw results (JSON)", open=False):
            spec_json, plain_json = gr.JSON(label="speculative"), gr.JSON(label="plain")

        def refresh_models() -> tuple[Any, str]:
            now = h.models()
            return gr.Dropdown(choices=now, value=now[0] if now else None), h.no_models_message()

        def cap_inputs(name: str | None, wanted: float) -> tuple[Any, Any, str]:
            """The prompt box and the new-tokens slider follow the selected model's context."""
            got = h.limits(name)
            top = got["max_new_tokens"] if got else MAX_NEW_TOKENS
            return (gr.Textbox(max_length=got["prompt_chars"] if got else MAX_PROMPT_CHARS),
                    gr.Slider(maximum=top, value=min(float(wanted or 1), top)), limits_message(got))

        refresh.click(refresh_models, None, [ckpt, missing], api_visibility="private")
        demo.load(refresh_models, None, [ckpt, missing], api_visibility="private")
        ckpt.change(cap_inputs, [ckpt, max_new], [prompt, max_new, limit_note], api_visibility="private")
        gr.api(h.models, api_name="models")
        form = [prompt, ckpt]
        sampling = [max_new, temperature, top_k, top_p, seed]
        one_at_a_time = dict(concurrency_limit=1, concurrency_id="engine")  # fair timings, one decode at a time
        (go.click(h.speculative, [*form, gamma, *sampling], [spec_html, spec_stats, spec_json], api_name="generate",
                  **one_at_a_time)
           .then(h.plain, [*form, *sampling], [plain_html, plain_stats, plain_json], api_name="plain", **one_at_a_time)
           .then(compare_html, [spec_json, plain_json], comparison, api_name="compare"))
    return demo.queue()


def _theme(gr: Any) -> Any:
    """The default theme with system fonts: nothing is fetched from a font CDN."""
    sans = [gr.themes.Font(f) for f in ("ui-sans-serif", "system-ui", "sans-serif")]
    mono = [gr.themes.Font(f) for f in ("ui-monospace", "Consolas", "monospace")]
    return gr.themes.Default(font=sans, font_mono=mono)


def launch(workspace: Workspace | str | Path | None, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
           block: bool = True, min_interval: float = 0.05) -> Any:
    """Serve the demo (blocking unless `block=False`, which returns the running Blocks; stop it with `.close()`)."""
    demo = build_demo(workspace, min_interval)
    try:
        demo.launch(server_name=host, server_port=port, share=share, inbrowser=False, prevent_thread_lock=not block,
                    ssr_mode=False, theme=_theme(_gradio()), show_error=False, quiet=True)
    except OSError as e:
        raise EdgeZooError(f"cannot serve on {host}:{port} ({e})", "pass another --port or stop what uses it") from None
    return demo
