"""The per-paper view of the results store, shared by the reports and the dashboard's Papers page: every discovered
paper plug-in (trainers/papers.py, the baselines last), its records (matched on the `paper` key the main job stores),
the newest record per artifact with its quality metric named, and its claim checks (the paper's numbers beside ours).
Nothing here names a paper."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from profiles import query, record
from profiles.report_render import Section, Table
from trainers.claims import QUICK_LABEL as QUICK

METRICS = record.METRICS
higher_is_better = record.higher_is_better


def metric_label(metric: str) -> str:
    """E.g. 'bits per byte (lower is better)'."""
    name = METRICS.get(metric, (str(metric).replace("_", " "), True))[0]
    return f"{name} ({'higher' if higher_is_better(metric) else 'lower'} is better)"


def metric_order(metrics: Iterable[str]) -> list[str]:
    """The metrics present, known ones first (top-1 before bits per byte), then the others by name."""
    present = set(metrics)
    return [m for m in METRICS if m in present] + sorted(present - set(METRICS))


def ordered_papers() -> list[Any]:
    """Every discovered paper plug-in in discovery order, the baselines last."""
    from trainers.papers import papers

    return sorted(papers(), key=lambda p: p.baseline)


belongs, artifact_key, newest = query.belongs, query.artifact_key, query.latest


def artifact_row(rec: dict[str, Any]) -> dict[str, Any]:
    """One artifact's record as raw values: vision records give p50 latency, language models decode tokens/s
    (speculative decoding adds gamma, context, acceptance and speed-up); the quality value comes with its metric."""
    art, acc, lat, sc = (rec.get(k) or {} for k in ("artifact", "accuracy", "latency", "scenario"))
    lm = str(sc.get("kind", "")).startswith("lm-")
    spec = sc if sc.get("kind") == "lm-specdec" else {}
    status = rec.get("status")
    return {"id": rec.get("id"), "model": rec.get("model"), "format": art.get("format"),
            "compression": art.get("compression"), "runtime": rec.get("runtime"),
            "status": status if status == "ok" else f"{status}: {rec.get('error_class') or ''}",
            "size_bytes": art.get("size_bytes"), "bits_per_weight": art.get("bits_per_weight"),
            "p50_ms": None if lm else lat.get("median_ms"), "decode_tokens_per_s": rec.get("decode_tokens_per_s"),
            "quality": acc.get("value"), "metric": metric_label(acc["metric"]) if acc.get("metric") else None,
            "gamma": spec.get("gamma"), "context": spec.get("context"), "acceptance": rec.get("acceptance_rate"),
            "speedup": rec.get("speedup_vs_plain"), "reward": acc.get("reward"), "kl": acc.get("kl_to_reference"),
            "win_rate": acc.get("win_rate_vs_base"), "error": rec.get("error_message")}


def verdict_text(claim: dict[str, Any]) -> str:
    """'pass (quick run: smoke scale, not the full check)' etc., with the date, the claim and the deciding reason."""
    verdict = str(claim.get("verdict"))
    if claim.get("quick") and not verdict.endswith(QUICK):  # stored before quick verdicts were labelled
        verdict += QUICK
    if verdict.endswith(QUICK):
        verdict = f"{verdict.removesuffix(QUICK)} (quick run: smoke scale, not the full check)"
    reason = str(claim.get("reason") or "").rstrip()
    return f"{verdict}, {claim.get('created')}: {claim.get('claim')}. {reason}{'' if reason.endswith('.') else '.'}"


def theirs(claim: dict[str, Any]) -> list[tuple[str, str]]:
    """The paper's numbers, as it reports them (at its scale, not reproduced here)."""
    return [(str(k), str(v)) for k, v in (claim.get("paper_numbers") or {}).items()]


def ours(claim: dict[str, Any]) -> list[dict[str, Any]]:
    """Our numbers: one row per arm, mean and std over seeds."""
    return [{"arm": arm, "mean": s.get("mean"), "std": s.get("std"), "seeds": len(s.get("per_seed") or []),
             "per seed": ", ".join(f"{v:.4g}" for v in s.get("per_seed") or [])}
            for arm, s in (claim.get("measured") or {}).items() if isinstance(s, dict)]


# ---------------------------------------------------------------- report sections

COLUMNS = (("model", "model", str), ("format", "format", str), ("compression", "compression", str),
           ("runtime", "runtime", str), ("status", "status", str), ("size_bytes", "size", None),
           ("bits_per_weight", "bits/w", ".2f"), ("p50_ms", "p50 ms", ".4f"), ("decode_tokens_per_s", "decode tok/s", ".0f"),
           ("quality", "quality", ".4f"), ("metric", "metric", str), ("gamma", "γ", str), ("context", "context", str),
           ("acceptance", "acceptance", ".3f"), ("speedup", "speed-up vs plain", ".2f"), ("reward", "reward", ".3f"),
           ("kl", "KL to reference", ".4f"), ("win_rate", "win rate vs base", ".3f"))


def _cell(value: Any, fmt: Any) -> str:
    if value is None:
        return "-"
    if fmt is None:  # bytes
        for shift, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
            if value >= 1 << shift:
                return f"{value / (1 << shift):.2f} {unit}"
        return f"{value} B"
    return str(value) if fmt is str else format(value, fmt)


def records_table(paper: Any, recs: list[dict[str, Any]]) -> Table:
    """The newest record per artifact, with only the columns some row fills."""
    rows = [artifact_row(r) for r in newest(recs)]
    cols = [c for c in COLUMNS if any(row[c[0]] is not None for row in rows)]
    return Table(f"{paper.key}: artifacts (newest record each)", [c[1] for c in cols],
                 [[_cell(row[key], fmt) for key, _, fmt in cols] for row in rows])


def claim_blocks(paper: Any, claims: list[dict[str, Any]]) -> list[Any]:
    """The newest claim check: verdict, then the paper's numbers and ours; or how to run one."""
    blocks: list[Any] = [f"Claim: {paper.claim_text}"] if paper.claim_text else []
    if paper.claim is None:
        return blocks + ["This plug-in declares no claim check."]
    if not claims:
        return blocks + [f"No claim run yet: `edgezoo reproduce {paper.key}` runs it (`--quick` for a smoke run)."]
    latest = max(claims, key=lambda c: c.get("id", 0))
    return blocks + [
        f"Verdict: {verdict_text(latest)}",
        Table(f"{paper.key}: the paper reports (at its scale, not reproduced here)", ["setting", "paper reports"],
              [list(r) for r in theirs(latest)]),
        Table(f"{paper.key}: measured here (mean and std over seeds)", ["arm", "mean", "std", "seeds", "per seed"],
              [[str(r["arm"]), _cell(r["mean"], ".4f"), _cell(r["std"], ".4f"), str(r["seeds"]), r["per seed"]]
               for r in ours(latest)])]


def paper_section(paper: Any, recs: list[dict[str, Any]], claims: list[dict[str, Any]]) -> Section:
    links = [f"`{paper.key}`"] + ([f"arXiv:{paper.arxiv} (https://arxiv.org/abs/{paper.arxiv})"] if paper.arxiv else [])
    links += [f"code: {paper.code}"] if paper.code else []
    blocks: list[Any] = [" · ".join(links) + f". {paper.summary}"]
    if recs:
        blocks.append(records_table(paper, recs))
    else:
        blocks.append(f"No records for `{paper.key}` yet: `edgezoo run --papers {paper.key}` trains its models at "
                      "small scale, exports and profiles them." if paper.deployables else
                      "This plug-in declares nothing for `edgezoo run` to deploy.")
    blocks += claim_blocks(paper, claims)
    return Section(f"Paper: {paper.title}", blocks)


def paper_sections(records: list[dict[str, Any]], claims: list[dict[str, Any]]) -> list[Section]:
    """One section per discovered paper plug-in (the baselines last): its records table and claim verdict."""
    return [paper_section(p, query.of_paper(records, p), [c for c in claims if c.get("paper") == p.key])
            for p in ordered_papers()]
