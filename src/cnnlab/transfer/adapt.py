"""Carrying a first convolution across a change of input channels.

The rules are exact, not heuristics:

- 3 -> 1 (a colour backbone on grey images): the new filter is the sum of the R, G and B filters.
  A grey image g fed to it gives exactly what the original network gives for the colour image
  (g, g, g), so this is the same as repeating the grey channel three times, at a third of the cost.
- 1 -> 3 (a grey backbone on colour images): each of the three new filters is the old one divided
  by 3. The network then sees the mean of the three channels, (R + G + B) / 3, and a colour image
  whose three channels are equal gives exactly what the grey network gave.

Both hold for the normalised inputs the network receives; each data set keeps its own
normalisation.
"""

from __future__ import annotations

import torch

from cnnlab.errors import CnnlabError


def adapt_conv_weight(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """The first convolution's weight (out, c, kh, kw) rewritten for `in_channels` input channels."""
    have = weight.shape[1]
    if have == in_channels:
        return weight
    if (have, in_channels) == (3, 1):
        return weight.sum(dim=1, keepdim=True)
    if (have, in_channels) == (1, 3):
        return weight.repeat(1, 3, 1, 1) / 3
    raise CnnlabError(
        f"cannot adapt a first convolution with {have} input channels to {in_channels}: "
        "only grey <-> colour (1 <-> 3) has a rule; convert the images instead"
    )
