"""The one measurement record, typed: from the measuring child to the store, CLI summary, reports and dashboard.

`Record.to_dict()` is the JSON the store keeps (profiles/store.py) and `Record.from_dict()` reads any stored record,
old or new: keys this version does not name are kept in each part's `extra`, and a stored dict comes back unchanged
(`from_dict(d).to_dict() == d`). A part's `None` field is left out of the dict unless the stored dict held it or the
part names it in KEEP (the keys every reader expects, e.g. the summary's columns)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from models.errors import EdgeZooError

STATUSES = ("ok", "failed", "unavailable", "interrupted")
# classify: vision (top-1); lm-generate: LM prefill/decode (bits per byte); lm-specdec: speculative decoding
KINDS = ("classify", "lm-generate", "lm-specdec")
# Quality metrics: (label, higher is better). Others are lower-is-better when their name says so.
METRICS = {"top1": ("top-1 accuracy", True), "bits_per_byte": ("bits per byte", False)}
LOWER_IS_BETTER = ("bits_per_byte", "bpb", "perplexity", "loss", "error")
_BOOK = ("extra", "nulls")  # bookkeeping fields of every part, not record keys


def higher_is_better(metric: str | None) -> bool:
    if metric in METRICS:
        return METRICS[metric][1]
    return not any(word in str(metric).lower() for word in LOWER_IS_BETTER)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class RecordError(EdgeZooError):
    """A record whose shape is wrong (an unknown status or scenario kind, a part that is not a mapping...)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem, "build records with profiles.record.Record (see its fields)")


@dataclass
class Part:
    """Known fields, plus `extra` (other keys, kept as they were) and `nulls` (fields stored as an explicit null)."""

    KEEP: ClassVar[tuple[str, ...]] = ()  # fields written even when None
    PARTS: ClassVar[dict[str, type[Part]]] = {}  # fields that are parts themselves
    extra: dict[str, Any] = field(default_factory=dict, repr=False, kw_only=True)
    nulls: frozenset[str] = field(default=frozenset(), repr=False, compare=False, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in _BOOK:
                continue
            v = getattr(self, f.name)
            if f"!{f.name}" in self.nulls:  # a stored dict without this key
                continue
            if v is not None or f.name in self.KEEP or f.name in self.nulls:
                out[f.name] = v.to_dict() if isinstance(v, Part) else v
        return {**out, **self.extra}

    @classmethod
    def _kwargs(cls, d: Any) -> dict[str, Any]:
        if not isinstance(d, dict):
            raise RecordError(f"{cls.__name__} must be a mapping, not {type(d).__name__}")
        names = {f.name for f in fields(cls)} - set(_BOOK)
        kw = {k: cls.PARTS[k].from_dict(v) if k in cls.PARTS and isinstance(v, dict) else v
              for k, v in d.items() if k in names}
        return {**kw, "extra": {k: v for k, v in d.items() if k not in names},
                "nulls": frozenset(k if k in d else f"!{k}" for k in names if k not in d or d[k] is None)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        return cls(**cls._kwargs(d))


@dataclass
class Artifact(Part):
    KEEP: ClassVar[tuple[str, ...]] = ("format", "compression", "size_bytes", "bits_per_weight")
    path: str | None = None
    format: str | None = None
    compression: str | None = None
    compression_config: Any = None
    size_bytes: int | None = None
    bits_per_weight: float | None = None
    sparsity: float | None = None
    weight_bytes: int | None = None
    cost: dict[str, Any] | None = None
    sha256: str | None = None
    foreign: bool | None = None
    verification: Any = None
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None


@dataclass
class Scenario(Part):
    """What drove the runtime: `kind` and its settings (classify: batch, warm-up and loop bounds; lm-generate:
    prompt, new tokens, context...; lm-specdec: gamma, context, mode...). Settings live in `extra`."""

    kind: str = "classify"  # records stored before scenarios named their kind are vision ones

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise RecordError(f"scenario kind {self.kind!r} is not one of {', '.join(KINDS)}")

    @property
    def settings(self) -> dict[str, Any]:
        return self.extra


@dataclass
class Latency(Part):
    """Raw samples and the stats profiles.stats.summarize derives from them (ms); loop-end facts go in `extra`."""

    samples_ms: list[float] | None = None
    n: int | None = None
    median_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    trimmed_mean_ms: float | None = None
    std_ms: float | None = None
    cv: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    median_ci95_ms: list[float] | None = None

    @classmethod
    def of(cls, samples_s: list[float], keep_samples: bool = True, **extra: Any) -> Latency:
        from profiles.stats import summarize

        stats = summarize(samples_s)
        return cls(samples_ms=[s * 1e3 for s in samples_s] if keep_samples else None, **stats, extra=extra,
                   nulls=frozenset(k for k, v in stats.items() if v is None))


@dataclass
class Memory(Part):
    peak_rss_bytes: int | None = None
    rss_before_load_bytes: int | None = None
    load_delta_bytes: int | None = None
    peak_reset: bool | None = None
    peak_label: str | None = None


@dataclass
class Quality(Part):
    """Stored under the record's `accuracy` key: metric (top1, bits_per_byte, ...), value, dataset, n. A policy LM
    (SALSA) adds its held-out reward, per-token KL to its reference and win rate against its base model."""

    KEEP: ClassVar[tuple[str, ...]] = ("metric", "value")
    metric: str | None = None
    value: float | None = None
    dataset: str | None = None
    n: int | None = None
    reward: float | None = None
    kl_to_reference: float | None = None
    win_rate_vs_base: float | None = None

    @property
    def higher_is_better(self) -> bool:
        return higher_is_better(self.metric)


@dataclass
class Parity(Part):
    reference: str | None = None
    sqnr_db: float | None = None
    max_abs_err: float | None = None
    top1_agreement: float | None = None
    n: int | None = None
    ok: bool | None = None


@dataclass
class Device(Part):
    """profiles.device.fingerprint(): id, name, and the machine's facts in `extra`."""

    id: str | None = None
    name: str | None = None


@dataclass
class Environment(Part):
    """profiles.device.environment() (library versions) and the git commit."""

    python: str | None = None
    git_commit: str | None = None


@dataclass
class Status(Part):
    """Stored as the record's top-level status, error_class and error_message."""

    KEEP: ClassVar[tuple[str, ...]] = ("status",)
    status: str = "ok"
    error_class: str | None = None
    error_message: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise RecordError(f"status {self.status!r} is not one of {', '.join(STATUSES)}")

    @classmethod
    def failure(cls, status: str, error_class: str, message: str) -> Status:
        return cls(status, error_class, message)


_STATUS_KEYS = ("status", "error_class", "error_message")


@dataclass
class Record(Part):
    """One measurement. Task-specific figures (load_seconds, ttft_s, acceptance_rate, ...) and any other key are
    in `extra`; the store adds `id` when it reads a record back."""

    KEEP: ClassVar[tuple[str, ...]] = ("created", "cache_key", "model", "paper", "runtime")
    PARTS: ClassVar[dict[str, type[Part]]] = {
        "artifact": Artifact, "scenario": Scenario, "latency": Latency, "memory": Memory, "accuracy": Quality,
        "parity": Parity, "device": Device, "environment": Environment}
    created: str = field(default_factory=now)
    cache_key: str | None = None
    model: str | None = None
    paper: str | None = None
    paper_arxiv: str | None = None
    artifact: Artifact | None = None
    runtime: str | None = None
    runtime_version: str | None = None
    threads: int | None = None
    scenario: Scenario | None = None
    device: Device | None = None
    environment: Environment | None = None
    status: Status = field(default_factory=Status)
    latency: Latency | None = None
    memory: Memory | None = None
    accuracy: Quality | None = None
    parity: Parity | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.status, str):
            self.status = Status(self.status)
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise RecordError(f"threads {self.threads!r} is not a positive integer")

    @property
    def quality(self) -> Quality | None:
        return self.accuracy

    @property
    def kind(self) -> str:
        return self.scenario.kind if isinstance(self.scenario, Scenario) else "classify"

    @property
    def ok(self) -> bool:
        return self.status.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        status = out.pop("status")
        return {**out, **status}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Record:
        if not isinstance(d, dict):
            raise RecordError(f"a record must be a mapping, not {type(d).__name__}")
        status = Status.from_dict({k: d[k] for k in _STATUS_KEYS if k in d})
        kw = cls._kwargs({k: v for k, v in d.items() if k not in _STATUS_KEYS})
        return cls(**{**kw, "nulls": kw["nulls"] - {"!status"}}, status=status)

    def updated(self, d: dict[str, Any]) -> Record:
        """This record with `d`'s keys (a child's result) laid over it, checked again."""
        return Record.from_dict({**self.to_dict(), **d})


def validated(d: dict[str, Any]) -> dict[str, Any]:
    """A record dict checked through Record (raises RecordError for a wrong shape), as the store keeps it."""
    return Record.from_dict(d).to_dict()


def failure(status: str, error_class: str, message: str, **extra: Any) -> dict[str, Any]:
    """The status keys of a failed, unavailable or interrupted record (a child's or launcher's result)."""
    return {**Status(status, error_class, message).to_dict(), **extra}
