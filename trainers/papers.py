"""Paper plug-ins. A paper is one folder under `trainers/` whose `__init__.py` declares `PAPER = Paper(...)`:
its card, recipes, how to train them, what the main job deploys from them, and its claim. The CLI, the main job,
`edgezoo reproduce`, the dashboard and the reports discover plug-ins here; no other file lists paper names.

Declarations stay import-light (no torch): trainers and claims are callables that import their module when called.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from models.errors import EdgeZooError

TASKS = ("classification", "lm")
SCENARIOS = ("classify", "lm", "specdec")

# (recipe YAML, checkpoint dir, overrides, check_only) -> metrics; check_only validates the recipe, trains nothing
Trainer = Callable[[Path, Path, list[str], bool], dict[str, Any]]
Reproducer = Callable[..., Any]                               # (quick=..., seeds=...) -> trainers.claims.ClaimResult


class PaperError(EdgeZooError):
    pass


@dataclass(frozen=True)
class Deployable:
    """One checkpoint the main job trains at small scale (cached by recipe hash) and the artifacts made from it.

    `recipe` is a YAML path relative to the paper's folder; the recipe's name (its file stem unless it says
    otherwise) names the zoo folder, so papers that deploy the same recipe (SeedLM and QuantSpec build on
    OpenELM's) share one training run.
    `exports` maps a format to the compression specs to export in it; `scenario` says how artifacts are measured
    (classify: vision profiling; lm: prefill/decode + bpb; specdec: QuantSpec acceptance and speed-up)."""
    recipe: str
    exports: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    scenario: str = "classify"
    trainer_of: str | None = None  # the paper whose trainer builds this checkpoint (default: this paper)
    needs: tuple[str, ...] = ()    # checkpoints (recipe names) it is trained from: retrained when they change


@dataclass(frozen=True)
class Paper:
    key: str                                  # short name: `edgezoo reproduce KEY`, record["paper"]
    title: str
    arxiv: str
    code: str
    summary: str                              # one line: what the paper contributes to an edge deployment
    task: str = "classification"              # classification | lm
    card: str | None = None                   # its spec card, a Markdown file in the paper's folder
    models: tuple[str, ...] = ()              # registered architectures it brings (models/)
    train: Trainer | None = None              # trains one of its recipes
    deployables: tuple[Deployable, ...] = ()  # what `edgezoo run` builds, exports and profiles
    claim: Reproducer | None = None           # `edgezoo reproduce KEY`
    claim_text: str = ""                      # the claim in one sentence
    baseline: bool = False                    # reference models, not one of the papers
    dashboard: Callable[[Any], None] | None = None  # extra Papers-page section: gets that paper's records
    folder: Path = Path()                     # set by discovery

    def recipe_path(self, recipe: str) -> Path:
        return (self.folder / recipe).resolve()

    @property
    def configs(self) -> Path:
        return self.folder / "configs"


def lazy(module: str, name: str) -> Callable[..., Any]:
    """A callable that imports `module` when first called: declarations stay light, the CLI starts fast."""
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__module__, call.__qualname__ = module, name  # what recipe hashes and error messages name
    return call


def _check(paper: Paper, module: str) -> None:
    if paper.task not in TASKS:
        raise PaperError(f"paper plug-in {module}: task {paper.task!r} is unknown", f"use one of {TASKS}")
    for d in paper.deployables:
        if d.scenario not in SCENARIOS:
            raise PaperError(f"paper plug-in {module}: scenario {d.scenario!r} is unknown", f"use one of {SCENARIOS}")


def discover(package: str = "trainers") -> dict[str, Paper]:
    """Every `PAPER` declared by a sub-package of `package` (the folders on its __path__), keyed by paper key."""
    pkg = importlib.import_module(package)
    found: dict[str, Paper] = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        paper = getattr(module, "PAPER", None)
        if not isinstance(paper, Paper):
            continue
        _check(paper, module.__name__)
        if paper.key in found:
            raise PaperError(f"paper key {paper.key!r} is declared twice ({module.__name__})",
                             "give each plug-in its own key")
        found[paper.key] = _with_folder(paper, Path(module.__file__).parent)
    return found


def _with_folder(paper: Paper, folder: Path) -> Paper:
    import dataclasses

    return dataclasses.replace(paper, folder=folder)


def papers(include_baselines: bool = True) -> list[Paper]:
    return [p for p in discover().values() if include_baselines or not p.baseline]


def get(key: str) -> Paper:
    found = discover()
    if key not in found:
        raise PaperError(f"no paper {key!r}", f"available: {', '.join(sorted(found))}")
    return found[key]


def trainer_for(paper: Paper, deployable: Deployable) -> Trainer:
    owner = get(deployable.trainer_of) if deployable.trainer_of else paper
    if owner.train is None:
        raise PaperError(f"paper {owner.key!r} declares no trainer", "add `train=` to its PAPER declaration")
    return owner.train


def recipe_trainer(name_or_path: str | Path) -> tuple[Path, Trainer, str | None]:
    """A recipe (path or bundled name) with the trainer of the plug-in whose folder holds it; a recipe outside every
    plug-in is a plain classifier recipe (trainers.loop)."""
    from trainers.adapters import train_classifier
    from trainers.recipe import resolve_path

    path = resolve_path(name_or_path).resolve()
    for paper in discover().values():
        if paper.train is not None and path.is_relative_to(paper.folder.resolve()):
            return path, paper.train, paper.key
    return path, train_classifier, None


def config_dirs() -> list[Path]:
    """Every plug-in's `configs/` folder: bundled recipe names resolve across them."""
    return [p.configs for p in discover().values() if p.configs.is_dir()]


def card_text(paper: Paper) -> str | None:
    """The paper's spec card, when it declares one."""
    path = paper.folder / paper.card if paper.card else None
    return path.read_text() if path is not None and path.is_file() else None
