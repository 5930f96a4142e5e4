"""Training-memory estimate for one step: weights + gradients + optimizer state + saved activations.

Assumptions (stated in docs/analysis.md too):
- Weights, gradients and optimizer state stay fp32 in every precision (mixed precision keeps
  fp32 master weights); "bf16"/"fp16" means autocast: tensors saved for backward are 2 bytes
  per float value, and autocast also keeps a 2-byte copy of every weight it casts.
- Saved activations are exactly the tensors autograd keeps for backward, found by running the
  abstract pass under `saved_tensors_hooks` (ReLU outputs, convolution inputs, max-pool indices
  at 8 bytes each, dropout masks ...), each storage counted once, parameters excluded.
- Backward briefly holds the gradient of a layer's output and of its input at once: we add two
  copies of the largest activation for that.
- Not counted: CUDA context, cuDNN workspaces, allocator fragmentation, the loss and logits.
"""

from __future__ import annotations

from cnnlab.analysis.rows import FP32, TrainingMemory
from cnnlab.errors import CnnlabError

PRECISION_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
OPTIMIZER_STATES = {"sgd": 1, "adam": 2, "adamw": 2, "sgd-nomomentum": 0}  # fp32 tensors per parameter


def training_memory(
    *,
    params: int,
    trainable: int,
    saved_float: int,
    saved_other: int,
    largest_activation: int,
    precision: str,
    optimizer: str,
) -> TrainingMemory:
    """All byte counts are for the whole batch; `saved_float` is at fp32."""
    if precision not in PRECISION_BYTES:
        raise CnnlabError(f"unknown precision '{precision}': choose one of {', '.join(PRECISION_BYTES)}")
    if optimizer not in OPTIMIZER_STATES:
        raise CnnlabError(f"unknown optimizer '{optimizer}': choose one of {', '.join(OPTIMIZER_STATES)}")
    scale = PRECISION_BYTES[precision] / FP32
    weights = params * FP32
    gradients = trainable * FP32
    state = trainable * FP32 * OPTIMIZER_STATES[optimizer]
    casts = params * PRECISION_BYTES[precision] if precision != "fp32" else 0
    activations = int(saved_float * scale) + saved_other + casts + int(2 * largest_activation * scale)
    return TrainingMemory(
        precision=precision,
        optimizer=optimizer,
        weights=weights,
        gradients=gradients,
        optimizer_state=state,
        activations=activations,
        total=weights + gradients + state + activations,
    )
