"""Training-memory estimate for one step: weights, gradients, optimizer state, saved activations.

The total is the peak of a replayed backward pass, not the sum of the parts: backward frees each
layer's saved activations once it is done with them while the parameter gradients appear, so at no
moment are all activations and all gradients alive together. Assumptions (docs/analysis.md):
- Weights, gradients and optimizer state stay fp32 in every precision (mixed precision keeps
  fp32 master weights), and the optimizer state exists before the step (every step after the
  first); gradients are set to None between steps, so they are born during backward.
- Saved activations are exactly the tensors autograd keeps for backward, found by running the
  abstract pass under `saved_tensors_hooks` (ReLU outputs, convolution inputs, max-pool indices at
  8 bytes each, dropout masks ...), each storage counted once, parameters excluded. A saved tensor
  is freed after the backward of the earliest call that saved it.
- While a call runs backward, the gradients of its output and its input are alive.
- "bf16"/"fp16" means autocast: floating-point activations and their gradients take 2 bytes, and
  every weight gets a 2-byte cast copy.
- Not counted: CUDA context, cuDNN workspaces, allocator rounding and fragmentation, the extra
  gradient buffer a branch point holds while the other branch runs backward, loss and logits.
"""

from __future__ import annotations

from cnnlab.analysis.rows import FP32, TrainingMemory
from cnnlab.analysis.trace import Step
from cnnlab.errors import CnnlabError

PRECISION_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
OPTIMIZER_STATES = {"sgd": 1, "adam": 2, "adamw": 2, "sgd-nomomentum": 0}  # fp32 tensors per parameter


def training_memory(
    *, params: int, trainable: int, steps: list[Step], batch_ratio: float, precision: str, optimizer: str
) -> TrainingMemory:
    """`steps` come from a trace at some batch; `batch_ratio` scales its activations to the batch.
    The parts of the peak are reported with it: they add up to `total`, less weights and state."""
    check_options(precision, optimizer)
    scale = PRECISION_BYTES[precision] / FP32 * batch_ratio
    weights = params * FP32
    state = trainable * FP32 * OPTIMIZER_STATES[optimizer]
    casts = params * PRECISION_BYTES[precision] if precision != "fp32" else 0
    saved = casts + sum(s.frees_float * scale + s.frees_other * batch_ratio for s in steps)
    alive, gradients, largest = saved, 0, 0
    peak = (saved, 0, 0)  # (saved activations alive, gradients born, temporary) at the worst moment
    for step in reversed(steps):
        gradients += step.gradients
        moment = (alive, gradients, step.activation_gradients * scale)
        largest = max(largest, moment[2])
        if sum(moment) > sum(peak):
            peak = moment
        alive -= step.frees_float * scale + step.frees_other * batch_ratio
    alive_at_peak, gradients_at_peak, temporary = int(peak[0]), int(peak[1]), int(peak[2])
    return TrainingMemory(
        precision=precision,
        optimizer=optimizer,
        weights=weights,
        gradients=gradients,
        optimizer_state=state,
        activations=int(saved),
        total=weights + state + alive_at_peak + gradients_at_peak + temporary,
        peak_activations=alive_at_peak,
        peak_gradients=gradients_at_peak,
        peak_temporary=temporary,
        largest_temporary=int(largest),
    )


def check_options(precision: str, optimizer: str) -> None:
    if precision not in PRECISION_BYTES:
        raise CnnlabError(f"unknown precision '{precision}': choose one of {', '.join(PRECISION_BYTES)}")
    if optimizer not in OPTIMIZER_STATES:
        raise CnnlabError(f"unknown optimizer '{optimizer}': choose one of {', '.join(OPTIMIZER_STATES)}")
