"""Paper claims: each paper folder's `claim.py` runs its small-scale experiment and returns a ClaimResult;
`edgezoo reproduce PAPER` prints it beside the paper's numbers and stores the verdict."""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from models.errors import EdgeZooError

VERDICTS = ("pass", "fail", "inconclusive")
QUICK_LABEL = " (quick)"


def label_verdict(verdict: str, quick: bool) -> str:
    """The one place a verdict is labelled: 'pass (quick)' for a quick (smoke) run, the plain word otherwise."""
    plain = verdict.removesuffix(QUICK_LABEL)
    if plain not in VERDICTS:
        raise ValueError(f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}")
    return plain + QUICK_LABEL if quick else plain


@dataclass
class ClaimResult:
    paper: str
    claim: str
    paper_numbers: dict[str, Any]            # what the paper reports, shown beside ours, never "reproduced"
    measured: dict[str, dict[str, Any]]      # arm -> seed_summary(...)
    verdict: str                             # pass | fail | inconclusive, labelled "... (quick)" for quick runs
    reason: str                              # the comparison that decided the verdict, with numbers
    quick: bool = False
    seeds: list[int] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"

    def __post_init__(self) -> None:
        # the stored, printed and shown verdict is the labelled one, whichever claim module built the result
        self.verdict = label_verdict(self.verdict, self.quick)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def seed_summary(values: list[float]) -> dict[str, Any]:
    return {"per_seed": list(values), "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def compare(a: dict[str, Any], b: dict[str, Any], higher_is_better: bool = True,
            allow_inconclusive: bool = True, margin: float = 0.0) -> str:
    """Verdict of "arm a beats arm b by at least `margin`" on the mean; 'inconclusive' when the card allows it
    and the difference is below the pooled std, or when either arm has fewer than two seeds (no spread to
    compare against: one seed cannot support a pass or a fail)."""
    if allow_inconclusive and min(len(a.get("per_seed", ())), len(b.get("per_seed", ()))) < 2:
        return "inconclusive"
    diff = (a["mean"] - b["mean"]) if higher_is_better else (b["mean"] - a["mean"])
    pooled = math.sqrt((a["std"] ** 2 + b["std"] ** 2) / 2)
    if allow_inconclusive and abs(diff - margin) < pooled:
        return "inconclusive"
    return "pass" if diff >= margin else "fail"


def combine(parts: Iterable[str]) -> str:
    """Overall verdict of several conditions: fail if any fails, else inconclusive if any is, else pass."""
    parts = list(parts)
    return "fail" if "fail" in parts else "inconclusive" if "inconclusive" in parts else "pass"


def reproducible() -> list[str]:
    """Keys of the paper plug-ins that declare a claim (trainers/papers.py discovers them)."""
    from trainers.papers import discover

    return sorted(k for k, p in discover().items() if p.claim is not None)


def resolve(paper: str) -> Callable[..., ClaimResult]:
    from trainers.papers import discover

    found = discover().get(paper)
    if found is None or found.claim is None:
        raise EdgeZooError(f"no claim check for paper {paper!r}", f"available: {', '.join(reproducible()) or 'none yet'}")
    return found.claim


def reproduce(paper: str, quick: bool = False, seeds: list[int] | None = None) -> ClaimResult:
    t0 = time.perf_counter()
    result = resolve(paper)(quick=quick, seeds=seeds)
    result.seconds = time.perf_counter() - t0
    return result
