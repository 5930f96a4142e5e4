"""The model zoo. Importing this package registers every model."""

from cnnlab.models.registry import Card, Paper, card, list_models, resolve
from cnnlab.models.zoo import create

__all__ = ["Card", "Paper", "card", "create", "list_models", "resolve"]
