"""`--download`: fetch a data set through torchvision into the layout `readers` looks for."""

from __future__ import annotations

from pathlib import Path

from cnnlab.errors import CnnlabError


def download(name: str, root: Path) -> None:
    """Download `name` under `root` (torchvision layouts: MNIST/raw, FashionMNIST/raw, cifar-10-batches-py)."""
    from torchvision import datasets

    fetch = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST, "cifar10": datasets.CIFAR10}[name]
    root.mkdir(parents=True, exist_ok=True)
    try:
        for train in (True, False):
            fetch(str(root), train=train, download=True)
    except Exception as error:  # network errors come in many types (URLError, HTTPError, socket errors)
        raise CnnlabError(f"could not download {name} into {root} ({error}); copy the files there by hand") from None
