"""Building blocks shared by several model families."""

from torch import nn


def paper_lrn(size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0) -> nn.LocalResponseNorm:
    """Local response normalisation with the constants as Krizhevsky et al. (2012) write them.

    The paper divides by (k + alpha * sum of squares over n neighbours) ** beta; torch's
    LocalResponseNorm divides alpha by n first, (k + alpha/n * sum) ** beta, as Caffe does. So the
    paper's alpha = 1e-4 with n = 5 is torch's alpha = 5e-4. (Caffe's reference AlexNet passes 1e-4
    to the /n form, i.e. five times weaker normalisation than the paper's formula.)
    """
    return nn.LocalResponseNorm(size, alpha=alpha * size, beta=beta, k=k)
