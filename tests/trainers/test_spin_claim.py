"""SPIN claim: the quick run end to end (about 20 s) and the verdict rules on synthetic seed summaries."""

from __future__ import annotations

from trainers.claims import resolve, seed_summary
from trainers.spin import claim

ARMS = ["(i) vanilla D8", "(ii) shared D8 r2 sequential", "(ii) shared D8 r2 strided", "(ii) shared D8 r2 random",
        "(iii) vanilla D4", "(iv) WF-mean from (i)", "(v) shared sequential scratch"]


def test_quick_claim_runs_every_arm() -> None:
    assert resolve("spin").__module__ == claim.__name__ and resolve("spin").__qualname__ == "run"
    result = claim.run(quick=True)
    assert [k.split(" [")[0] for k in result.measured] == ARMS
    for arm, s in result.measured.items():
        assert 0.2 < s["mean"] <= 1.0, (arm, s)  # well above chance (0.1) even after 3 epochs
    # one seed: the two comparisons cannot pass, and the verdict says it comes from a quick run
    assert result.verdict in ("fail (quick)", "inconclusive (quick)") and "sharing vs shrinking" in result.reason
    shared = next(k for k in result.measured if k.startswith("(ii) shared D8 r2 sequential"))
    shrunk = next(k for k in result.measured if k.startswith("(iii)"))
    assert "pw 1.1k" in shared and "pw 1.1k" in shrunk  # equal pointwise parameters (C=16: 4 x 272)


def _m(**means: float) -> dict:
    base = dict(zip(ARMS, [0.90, 0.88, 0.87, 0.875, 0.85, 0.89, 0.86]))
    base.update({ARMS[int(k[1:])]: v for k, v in means.items()})
    return {arm: seed_summary([v - 0.001, v, v + 0.001]) for arm, v in base.items()}


def test_verdict_rules() -> None:
    assert claim.verdict(_m())[0] == "pass"
    assert claim.verdict(_m(a1=0.80))[0] == "fail"                     # sharing loses to shrinking
    assert claim.verdict(_m(a5=0.80))[0] == "fail"                     # fusion loses to scratch
    assert claim.verdict(_m(a2=0.95))[0] == "fail"                     # mappings 7 points apart
    assert claim.verdict({a: seed_summary([0.95, 0.951]) for a in ARMS})[0] == "inconclusive"  # saturated


def test_train_fused_writes_plain_shared_checkpoint(tmp_path) -> None:
    from typer.testing import CliRunner

    from app.cli_spin import app
    from models import checkpoint
    from trainers.loop import train
    from trainers.recipe import Recipe

    train(Recipe(name="u", model="spin_convmixer", model_args={"dim": 8, "depth": 4, "share": 0}, epochs=1,
                 threads=1), tmp_path / "u", progress=False)
    r = CliRunner().invoke(app, [str(tmp_path / "u"), str(tmp_path / "s"), "--share", "2", "--mapping", "strided",
                                 "--epochs", "1"])
    assert r.exit_code == 0, r.output
    model, card = checkpoint.load(tmp_path / "s")
    assert model.layer_map == (0, 1, 0, 1) and len(model.pointwise) == 2
    assert card["spin_fusion"]["mapping"] == "strided" and 0 <= card["metrics"]["test_accuracy"] <= 1
