"""DynaMoE (arXiv 2502.12325): a trained dense byte LM converted into nested FFN experts with token-difficulty
routers; one sensitivity knob theta trades bits per byte for active FFN parameters."""

from trainers.adapters import recipe_module_trainer
from trainers.papers import Deployable, Paper, lazy

THETAS = ("dynamoe:theta=0.2", "dynamoe:theta=0.8")  # beside `none` (the checkpoint's own theta, 0.5)

PAPER = Paper(
    key="dynamoe", card="card.md", task="lm",
    title="From Dense to Dynamic: Token-Difficulty Driven MoEfication of Pre-Trained LLMs", arxiv="2502.12325",
    code="https://arxiv.org/abs/2502.12325",
    summary="Nested FFN experts + a token-difficulty router: one knob theta trades bpb for active FFN parameters.",
    models=("dynamoe",), train=recipe_module_trainer("trainers.dynamoe.recipe"),
    claim=lazy("trainers.dynamoe.claim", "reproduce"),
    claim_text="At ~50 % active FFN, routing by the learned difficulty router beats random routing with the same "
               "expert-size histogram, oracle labels do at least as well, and the theta curve is monotone.",
    deployables=(Deployable(recipe="configs/dynamoe_main.yaml", scenario="lm",
                            exports={f: ("none", *THETAS) for f in ("onnx", "mlx", "coreml")}),),
)
