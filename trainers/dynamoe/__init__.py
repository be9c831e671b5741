"""DynaMoE (arXiv 2502.12325): a trained dense byte LM converted into nested FFN experts with token-difficulty
routers; one sensitivity knob theta trades bits per byte for active FFN parameters."""

from trainers.adapters import recipe_module_trainer
from trainers.papers import Deployable, Paper, lazy

# beside `none` (the checkpoint's own theta, 0.7): ONNX and Core ML compute the FFN masked (flat latency in theta),
# so two points show them; MLX slices per token, so it gets three
EXPORTS = {"onnx": ("none", "dynamoe:theta=0.9"), "coreml": ("none", "dynamoe:theta=0.9"),
           "mlx": ("none", "dynamoe:theta=0.5", "dynamoe:theta=0.9")}

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
                            exports=EXPORTS),),
)
