"""`edgezoo demo specdec`: the Gradio app served on loopback, driven through gradio_client against the real engine."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections import Counter
from html import unescape
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from app.cli import app
from app.demo_specdec import SpecDemo
from app.workspace import Workspace
from models import checkpoint
from models.openelm import ModelArgs, OpenELM
from trainers.text import encode

PROMPT = "Hello <b>world</b> & "
CKPT = "tiny/lm"
N_NEW = 40


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """A random-init tiny byte LM in a tmp zoo (plus a non-LM card that must not be listed), served in-process."""
    from app.demo_specdec import launch
    from gradio_client import Client

    root = tmp_path_factory.mktemp("ws")
    torch.manual_seed(0)
    checkpoint.save(OpenELM(ModelArgs.tiny()), root / "zoo" / "tiny" / "lm", {"note": "random init"})
    (root / "zoo" / "digits").mkdir(parents=True)
    (root / "zoo" / "digits" / "card.json").write_text('{"model": "resnet", "args": {}, "task": "classification"}')
    port = _free_port()
    demo = launch(root, port=port, block=False, min_interval=0.0)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False, download_files=False)
        yield {"demo": demo, "port": port, "client": client, "root": root}
    finally:
        demo.close()


def _generate(client, prompt: str = PROMPT, gamma: int = 8, n: int = N_NEW, temperature: float = 0.0,
              checkpoint_name: str | None = CKPT) -> list[tuple]:
    job = client.submit(prompt, checkpoint_name, gamma, n, temperature, 0, 1.0, 0, api_name="/generate")
    job.result()
    return job.outputs()


def test_streams_coloured_tokens_and_stats(server) -> None:
    outs = _generate(server["client"])
    assert len(outs) >= 3, "expected several partial outputs (one per verify step)"
    partial = [o[2]["new_tokens"] for o in outs[:-1]]
    assert all(not o[2]["done"] for o in outs[:-1]) and partial == sorted(partial)
    html, panel, res = outs[-1]
    assert res["done"] and res["new_tokens"] == N_NEW == res["stats"]["new_tokens"] == len(res["token_ids"])
    s = res["stats"]
    assert s["verify_passes"] >= 1 and 0 < s["verify_passes_per_token"] <= 1 and 0 <= s["acceptance_rate"] <= 1
    assert res["tokens_per_s"] > 0 and set(res["kv_cache_bytes"]) >= {"quantspec", "fp16", "fp32"}
    assert "acceptance rate" in panel and "verifier passes / token" in panel and "KV cache" in panel
    # every kind the engine emitted is coloured with its class, and nothing else is
    assert _span_kinds(html) == {k: v for k, v in res["kinds"].items() if v}
    assert sum(res["kinds"].values()) == N_NEW
    if s["accepted"] < s["drafted"]:  # some draft was rejected: a verifier correction shows in red
        assert 'class="tok-corrected"' in html
    assert s["accepted"] > 0 and s["corrected"] > 0, "a random-init model with gamma 8 should see both"


def _span_kinds(html: str) -> dict[str, int]:
    return dict(Counter(re.findall(r'<span class="tok-(accepted|corrected|bonus|plain)" title', html)))


def test_prompt_html_is_escaped(server) -> None:
    html = _generate(server["client"], prompt="<script>alert(1)</script>&", n=8)[-1][0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;" in html
    assert set(re.findall(r"<(\w+)", html)) <= {"div", "span"}


def test_plain_matches_speculative_greedy(server) -> None:
    from models.speculative import QuantSpecDecoder

    spec = _generate(server["client"])[-1][2]
    plain_job = server["client"].submit(PROMPT, CKPT, N_NEW, 0.0, 0, 1.0, 0, api_name="/plain")
    plain_job.result()
    plain_outs = plain_job.outputs()
    plain = plain_outs[-1][2]
    assert len(plain_outs) >= 3 and plain["done"] and plain["kinds"] == {"plain": N_NEW}
    assert 'class="tok-plain"' in plain_outs[-1][0] and plain["tokens_per_s"] > 0
    if spec["token_ids"] != plain["token_ids"]:
        # exactness holds w.r.t. the verifier view (INT8 KV), not the fp32 model: check the engine's own reference
        model, _ = checkpoint.load(server["root"] / "zoo" / CKPT)
        ref, gaps = QuantSpecDecoder(model).verifier_generate(encode(PROMPT), N_NEW)
        bad = [i for i, (a, b) in enumerate(zip(spec["token_ids"], ref)) if a != b]
        assert not bad or gaps[bad[0]] < 1e-4, f"speculative output departs from the verifier view at {bad[:1]}"
    compare = server["client"].predict(spec, plain, api_name="/compare")
    assert "speed-up" in compare and "tok/s" in compare
    assert ("identical" in compare) == (spec["text"] == plain["text"])


def test_bad_input_is_a_message_not_a_traceback(server) -> None:
    client = server["client"]
    for prompt, name, expected in [("", CKPT, "prompt is empty"), ("x", "nope/none", "no LM checkpoint"),
                                   ("x", None, "no checkpoint selected")]:
        html, panel, res = _generate(client, prompt, n=4, checkpoint_name=name)[-1]
        assert 'class="ez-error"' in html and expected in html and "Traceback" not in html and res["error"]
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="maximum value 16"):  # the slider's own bound check: a toast in the page
        _generate(client, "x", gamma=99, n=4)


def test_models_endpoint_lists_lm_checkpoints_only(server) -> None:
    assert server["client"].predict(api_name="/models") == [CKPT]


def test_handlers_validate_without_a_server(tmp_path: Path) -> None:
    h = SpecDemo(Workspace.resolve(tmp_path))
    assert h.models() == [] and "edgezoo lm train" in h.no_models_message()
    html, _, res = list(h.speculative("x", None, 4, 8, 0.0, 0, 1.0, 0))[-1]
    assert "edgezoo lm train" in html and res["error"]
    html = list(h.speculative("x", "a", 0, 8, 0.0, 0, 1.0, 0))[-1][0]
    assert "draft length γ = 0 is out of range" in html


def _listeners(port: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of the sockets listening on `port`."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:
                out.append(addr)
    return out


def test_server_binds_loopback_only(server) -> None:
    assert server["demo"].server_name == "127.0.0.1" and server["demo"].share_url is None
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp on this OS; the server_name check above still ran")
    assert _listeners(server["port"]) == ["0100007F"]  # 127.0.0.1 only, no 0.0.0.0 or IPv6 wildcard


def test_cli_help_and_no_gradio_at_startup() -> None:
    r = CliRunner().invoke(app, ["demo", "specdec", "--help"])
    assert r.exit_code == 0 and "--host" in r.output and "127.0.0.1" in r.output and "--port" in r.output
    code = "import sys, app.cli; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout
    assert out.strip() == "False"


def test_token_view_utf8_and_escaping() -> None:
    from app.demo_specdec import TokenView

    view = TokenView(encode("a<"), "speculative")
    view.add([*"é".encode(), 0xFF, ord("&")], ["accepted", "corrected", "bonus", "weird"])
    html = view.html(final=True)
    assert '<span class="tok-prompt">a&lt;</span>' in html
    assert '<span class="tok-accepted" title="accepted 0xc3"></span><span class="tok-corrected" title="corrected 0xa9">é' in html
    assert ">\\xff</span>" in html and '<span class="tok-plain" title="plain 0x26">&amp;</span>' in html


# --------------------------------------------------------------------------- input caps (prompt bytes, new tokens)


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> SpecDemo:
    """Handlers over a zoo with the tiny byte LM (context 64) and an upstream-style model (vocabulary 512)."""
    import dataclasses

    root = tmp_path_factory.mktemp("caps")
    torch.manual_seed(0)
    checkpoint.save(OpenELM(ModelArgs.tiny()), root / "zoo" / "tiny" / "lm", {})
    wide = dataclasses.replace(ModelArgs.tiny(), vocab_size=512)
    checkpoint.save(OpenELM(wide), root / "zoo" / "wide", {"tokenizer": "upstream (not bundled)"})
    return SpecDemo(Workspace.resolve(root))


@pytest.mark.parametrize("prompt,n,expected", [
    ("x" * 30_000, 8, "a 30,000-byte prompt plus 8 new tokens exceeds the model's context of 64 tokens"),
    ("x" * 100_000, 8, "a 100,000-byte prompt plus 8 new tokens exceeds the model's context of 64 tokens"),
    ("x" * (1 << 20 | 1), 8, "the prompt has 1,048,577 characters"),
    ("é" * 30, 8, "a 60-byte prompt plus 8 new tokens exceeds"),  # bytes, not characters, count
    ("def ", 100, "ask for at most 60 new tokens"),
    ("def ", 513, "max new tokens = 513 is out of range"),
])
def test_prompt_and_new_tokens_are_capped_before_running(capped: SpecDemo, prompt: str, n: int, expected: str) -> None:
    for outs in (list(capped.speculative(prompt, CKPT, 4, n, 0.0, 0, 1.0, 0)),
                 list(capped.plain(prompt, CKPT, n, 0.0, 0, 1.0, 0))):
        assert len(outs) == 1, "a refused request yields its message once, nothing streamed"
        html, panel, res = outs[0]
        assert 'class="ez-error"' in html and expected in unescape(html) and res["error"] and panel == ""
    assert capped.cache._items == {}, "no model was loaded for a request that cannot fit"


def test_other_refusals_shown_in_the_page(capped: SpecDemo) -> None:
    html = list(capped.speculative("def ", "wide", 4, 8, 0.0, 0, 1.0, 0))[-1][0]
    assert "the byte tokenizer cannot encode" in html and "512" in html
    html = list(capped.speculative("def ", CKPT, 4, 8, 1e-300, 0, 1.0, 0))[-1][0]
    assert "temperature 1e-300 cannot be sampled" in html
    assert capped.cache._items == {}
    ok = list(capped.speculative("x" * 56, CKPT, 4, 8, 0.0, 0, 1.0, 0))[-1][2]  # exactly the context: runs
    assert ok["done"] and ok["new_tokens"] == 8 and ok["context"] == 64


def test_limits_follow_the_selected_model(capped: SpecDemo) -> None:
    from app.demo_specdec import limits_message

    lim = capped.limits(CKPT)
    assert lim == {"context": 64, "max_new_tokens": 63, "prompt_chars": 63}
    assert capped.limits(None) is None and capped.limits("nope") is None
    assert "64 tokens" in limits_message(lim) and limits_message(None) == ""


def test_page_inputs_are_capped(server) -> None:
    from gradio_client.exceptions import AppError

    blocks = server["demo"].blocks.values()
    slider = next(b for b in blocks if getattr(b, "label", None) == "max new tokens")
    box = next(b for b in blocks if getattr(b, "label", None) == "Prompt")
    assert slider.maximum == 63 and box.max_length == 63  # the tiny LM's context (64) less one prompt byte
    fn = next(f for f in server["demo"].fns.values() if f.name == "cap_inputs")
    new_box, new_slider, note = fn.fn(CKPT, 500)
    assert new_slider.maximum == 63 and new_slider.value == 63 and new_box.max_length == 63 and "64 tokens" in note
    with pytest.raises(AppError, match="maximum value 63"):  # the slider's own bound, checked by the server
        _generate(server["client"], "x", n=100)
    html, _, res = _generate(server["client"], "x" * 30_000, n=8)[-1]  # over the API, past the text box's cap
    assert 'class="ez-error"' in html and "exceeds the model's context of 64 tokens" in unescape(html) and res["error"]
