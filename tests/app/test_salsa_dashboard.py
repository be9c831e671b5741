"""The Papers page under AppTest with SALSA records from the real producers: a tiny SALSA zoo (base, SFTs, soup,
policy), its soup and policy exported and measured as language models: the SALSA section's table carries reward,
KL and win rate, and its reward-KL and loss-barrier plots are drawn from the checkpoints' cards."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.workspace import Workspace
from tests.trainers.test_salsa import build_zoo

VIEWS = Path(__file__).resolve().parents[2] / "app" / "dashboard" / "views"


@pytest.fixture(scope="module")
def ws_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from exporters.lm.artifact import export_lm
    from profiles.lm_measure import measure_lm

    ws = Workspace(tmp_path_factory.mktemp("salsa-dash") / "ws")
    build_zoo(ws.zoo)
    store = ws.store()
    for name in ("soup", "policy"):
        folder = export_lm(ws.zoo / name, "torch", "none", ws.artifacts / f"{name}-torch")
        record = measure_lm(folder, threads=1, prompt_len=8, new_tokens=4, context=32, eval_windows=4, repeats=1,
                            timeout=300)
        record["paper"] = "salsa"
        store.add(record)
    store.close()
    return ws.root


@pytest.mark.slow
def test_salsa_section_shows_reward_kl_and_curves(ws_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEZOO_WORKSPACE", str(ws_root))
    at = AppTest.from_file(str(VIEWS / "papers.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not [e.value for e in at.error if "salsa" in e.value]
    table = next(d.value for d in at.dataframe if "checkpoint" in d.value.columns)
    assert list(table["checkpoint"]) == ["policy", "soup"] or list(table["checkpoint"]) == ["soup", "policy"]
    assert table["reward"].notna().all() and (table["KL to reference"] >= 0).all()
    generic = next(d.value for d in at.dataframe if "win rate vs base" in d.value.columns and "model" in d.value)
    assert generic["win rate vs base"].between(0, 1).all()
    keys = {c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")}
    assert {"salsa_reward_kl", "salsa_barrier"} <= keys
