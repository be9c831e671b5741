"""`edgezoo specdec ...`: QuantSpec self-speculative decoding of an OpenELM byte LM (benchmark, coloured generation)."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Optional

import typer

from app.cli_options import WorkspaceOpt, fail as _fail, finite_float, int_at_least
from models.errors import EdgeZooError

app = typer.Typer(help="QuantSpec self-speculative decoding: 4-bit draft + 8-bit-cache verifier of one byte LM.",
                  no_args_is_help=True)
STYLE = {"accepted": "green", "corrected": "bold red", "bonus": "bold blue", "plain": "white"}
KV_GROUP = typer.Option(32, "--kv-group", callback=int_at_least(2, 8), help="G: tokens per key group (even)")
RESIDUAL = typer.Option(32, "--residual", callback=int_at_least(1, 32), help="R: full-precision buffer length "
                        "(multiple of G)")
THREADS = typer.Option(1, "--threads", "-t", callback=int_at_least(1), max=256)  # 10^6 threads crash torch
RUNTIME = typer.Option("fake", "--runtime", help="fake: fp32 verifier + fake-quantized draft (same cost per pass); "
                       "int4: bf16 verifier + packed 4-bit MatMulNBits draft, in-place KV caches")


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise EdgeZooError(f"--{what} {text!r} is not a comma-separated list of integers", f"e.g. --{what} 2,4,6") from None


def print_records(records: list[dict], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for h in ("mode", "context", "gamma", "acceptance", "alpha", "passes/token", "c", "analytic x", "tok/s spec",
              "tok/s plain", "speed-up", "KV bytes (fp16)"):
        table.add_column(h, justify="left" if h == "mode" else "right")
    for r in records:
        s = r["scenario"]
        table.add_row(s["mode"], str(s["context"]), str(s["gamma"]), f"{r['acceptance_rate']:.3f}",
                      f"{r['token_acceptance']:.3f}", f"{r['verify_passes_per_token']:.3f}", f"{r['cost_ratio']:.2f}",
                      f"{r['analytic_speedup']:.2f}", f"{r['decode_tokens_per_s']:.0f}",
                      f"{r['plain_decode_tokens_per_s']:.0f}", f"{r['speedup_vs_plain']:.2f}",
                      f"{r['kv_cache_bytes']:,} ({r['kv_cache_bytes_fp16']:,})")
    Console(width=200).print(table)


@app.command("bench")
def bench(ckpt: Path = typer.Argument(..., help="LM checkpoint folder"),
          gammas: str = typer.Option("2,4,6", "--gammas", help="draft lengths (>= 1)"),
          contexts: str = typer.Option("128,480", "--contexts", help="prompt lengths in bytes (validation text), "
                                       "each at most the model's context"),
          tokens: int = typer.Option(64, "--tokens", callback=int_at_least(1), help="new tokens per prompt"),
          prompts: int = typer.Option(3, "--prompts", callback=int_at_least(1), help="prompts per context"),
          modes: str = typer.Option("greedy", "--modes", help="greedy and/or sample (T = 1)"),
          threads: int = THREADS, kv_group: int = KV_GROUP, residual: int = RESIDUAL, runtime: str = RUNTIME,
          workspace: Optional[Path] = WorkspaceOpt) -> None:
    """Acceptance, verifier passes per token and decode tokens/s vs plain decoding; one store record per
    (gamma, context, mode)."""
    from app.workspace import Workspace
    from profiles.specdec_measure import measure_specdec

    try:
        ws = Workspace.resolve(workspace)
        records = measure_specdec(ckpt, _ints(gammas, "gammas"), _ints(contexts, "contexts"), tokens, prompts,
                                  [m.strip() for m in modes.split(",")], threads, kv_group, residual,
                                  log=lambda s: typer.echo(s, err=True), runtime=runtime)
        store = ws.store()  # opened once the inputs proved good: a bad command leaves no store behind
    except EdgeZooError as e:
        _fail(e)
    for r in records:
        store.add(r)
    print_records(records, f"QuantSpec on {ckpt} ({threads} thread(s), stored in {store.path})")


@app.command("generate")
def generate(ckpt: Path = typer.Argument(..., help="LM checkpoint folder (byte vocabulary)"),
             prompt: str = typer.Option("def ", "--prompt", "-p"),
             gamma: int = typer.Option(4, "--gamma", "-g", callback=int_at_least(1, 4),
                                       help="draft tokens per verifier pass"),
             tokens: int = typer.Option(80, "--tokens", "-n", callback=int_at_least(1),
                                        help="new tokens (prompt + new tokens within the model's context)"),
             temperature: float = typer.Option(0.0, "--temperature", callback=finite_float(0.0, 10.0),
                                               help="0 = greedy"),
             top_k: int = typer.Option(0, "--top-k", callback=int_at_least(0), help="0 = off"),
             top_p: float = typer.Option(1.0, "--top-p", callback=finite_float(0.0, 1.0, strict_low=True, example=0.9)),
             seed: int = typer.Option(0, "--seed", min=0, max=2**63 - 1), threads: int = THREADS,
             kv_group: int = KV_GROUP, residual: int = RESIDUAL, runtime: str = RUNTIME) -> None:
    """Generate with self-speculation: green = accepted draft, red = verifier correction, blue = bonus."""
    from rich.console import Console
    from rich.text import Text

    import torch

    from models.checkpoint import load_lm
    from models.generation.prompt import byte_prompt
    from models.generation.sampling import check_temperature
    from profiles.specdec_measure import check_runtime, decoder

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        check_temperature(temperature)
        check_runtime(runtime)
        model, card = load_lm(ckpt)
        ids = byte_prompt(model.args, prompt, tokens, card.get("tokenizer"))
        dec = decoder(model, kv_group, residual, runtime)
        gamma = min(gamma, tokens)  # no step drafts more than is left to generate
        events = list(dec.stream(ids, tokens, gamma, temperature, top_k, top_p, seed))
    except EdgeZooError as e:
        _fail(e)
    finally:
        torch.set_num_threads(old)
    text = Text(codecs.decode(bytes(ids), "utf-8", "replace"), style="dim")
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a multi-byte character takes its last byte's colour
    for ev in events:
        for tok, kind in zip(ev.tokens, ev.kinds):
            text.append(utf8.decode(bytes([tok])), style=STYLE[kind])
    console = Console(width=160)
    console.print(text)
    st = events[-1].stats if events else None
    if st is not None:
        console.print(f"[green]accepted[/green] {st.accepted}/{st.drafted} drafts ({st.acceptance_rate:.1%}), "
                      f"[red]corrected[/red] {st.corrected}, verifier passes/token {st.verify_passes_per_token:.3f}, "
                      f"{st.tokens_per_s:.0f} tok/s")
