"""SALSA (Chegini et al. 2411.01798): KL-regularized policy optimization whose reference is the weight soup of two
SFT models from one base. The main job deploys all six checkpoints of the pipeline (base, SFT-1, SFT-2, soup, the
SFT-1-reference policy and the soup-reference policy), each an ordinary OpenELM byte LM; their records carry held-out
reward, KL to the reference and win rate beside bits per byte."""

from trainers.adapters import recipe_module_trainer
from trainers.papers import Deployable, Paper, lazy

FORMATS = ("onnx", "mlx", "coreml")
STEP = {f: ("none",) for f in FORMATS}              # base, SFTs, soup: fp32 exports
POLICY = {f: ("none", "int8") for f in FORMATS}     # the two policies, also int8


def _lm(recipe: str, exports: dict, needs: tuple[str, ...] = ()) -> Deployable:
    return Deployable(recipe=f"configs/{recipe}.yaml", scenario="lm", exports=exports, needs=needs)


PAPER = Paper(
    key="salsa", card="card.md", task="lm",
    title="SALSA: Soup-based Alignment Learning for Stronger Adaptation in RLHF", arxiv="2411.01798",
    code="https://arxiv.org/abs/2411.01798",
    summary="A better aligned small LM at the same size and latency: RLHF against the weight soup of two SFT models.",
    models=("openelm",), train=recipe_module_trainer("trainers.salsa.recipe"),
    claim=lazy("trainers.salsa.claim", "reproduce"),
    claim_text="The 0.5/0.5 soup of two SFT runs shows no loss barrier, and with the programmatic keyword reward a "
               "policy optimized against the soup reaches a higher held-out reward than one optimized against SFT-1 "
               "at equal beta, and no lower reward at matched KL.",
    deployables=(_lm("salsa_base", STEP), _lm("salsa_sft1", STEP, ("salsa_base",)),
                 _lm("salsa_sft2", STEP, ("salsa_base",)), _lm("salsa_soup", STEP, ("salsa_sft1", "salsa_sft2")),
                 _lm("salsa_policy_sft1", POLICY, ("salsa_sft1",)), _lm("salsa_policy_soup", POLICY, ("salsa_soup",))),
    dashboard=lazy("trainers.salsa.dashboard", "section"),
)
