"""Any model by name: a zoo name, a Python import path, a file, or timm.

    lenet5                          the zoo (cnnlab list)
    torchvision.models:mobilenet_v2 module:attribute, imported (a class, a function or a module)
    path/to/net.py:Net              a file, loaded as a module
    timm:resnet50                   timm.create_model("resnet50"), when timm is installed

Constructor arguments come as a dict (`--arg key=value` on the command line: `model_args`).
Every command that takes a model (summary, compare, viz architecture) resolves it here, so each
accepts the same things; every way it can go wrong is one `CnnlabError` line.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import inspect
import sys
import warnings
from pathlib import Path

from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.probe import build_on_meta


def is_external(spec: str) -> bool:
    """True for an import path, a file or a timm name; False for a zoo name."""
    return ":" in str(spec) or str(spec).endswith(".py")


def model_args(pairs: list[str] | None) -> dict:
    """['num_classes=10', 'aux_logits=False', 'name=b0'] → {'num_classes': 10, 'aux_logits': False, 'name': 'b0'}.

    Values are Python literals where they parse as one (numbers, True/False/None, tuples), else text."""
    kwargs = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip().isidentifier():
            raise CnnlabError(f"--arg '{pair}' is not key=value: write e.g. --arg num_classes=10")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        kwargs[key.strip()] = value
    return kwargs


def build_model(spec: str, kwargs: dict | None = None, *, meta: bool = True) -> nn.Module:
    """The model `spec` names, built with `kwargs`; on the meta device (no memory, no initialisers)
    when `meta`, falling back to an ordinary build for a constructor that cannot run on meta."""
    from cnnlab.models import create

    kwargs = dict(kwargs or {})
    if not is_external(spec):
        return build_on_meta(lambda: create(spec, guard=False, **kwargs)) if meta else create(spec, **kwargs)
    target = _find(spec)
    if isinstance(target, nn.Module):
        if kwargs:
            raise CnnlabError(f"{spec} is a model instance, built already: it takes no --arg")
        return target
    if not callable(target):
        raise CnnlabError(f"{spec} is a {type(target).__name__}, not a model class or a function that builds one")
    _check_arguments(spec, target, kwargs)
    if meta:
        try:
            with warnings.catch_warnings():  # e.g. torchvision on its initialisation, which meta skips anyway
                warnings.simplefilter("ignore", FutureWarning)
                return _checked(spec, build_on_meta(lambda: target(**kwargs)))
        except CnnlabError:
            raise
        except Exception:  # noqa: BLE001 - a constructor that needs real tensors: build it for real below
            pass
    try:
        model = target(**kwargs)
    except Exception as error:  # noqa: BLE001 - the user's code: say what failed in one line
        raise CnnlabError(f"building {spec} failed: {_first_line(error)}") from None
    return _checked(spec, model)


def _find(spec: str):
    """The object `spec` names: module:attribute, file.py:attribute or timm:name."""
    source, sep, attribute = str(spec).rpartition(":")
    if not sep:
        raise CnnlabError(f"{spec}: name the model in the file, e.g. {spec}:Net")
    if not source or not attribute:
        raise CnnlabError(f"'{spec}' is not a model: write module:attribute, path/to/net.py:Net or timm:name")
    if source == "timm":
        return _timm_builder(attribute)
    module = _load_file(source) if source.endswith(".py") or "/" in source or "\\" in source else _import(source)
    target = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            models = sorted(name for name, value in vars(module).items() if inspect.isclass(value)
                            and issubclass(value, nn.Module) and value.__module__ == module.__name__)
            hint = f"it defines {', '.join(models)}" if models else "it defines no nn.Module class"
            raise CnnlabError(f"{source} has no '{attribute}': {hint}")
        target = getattr(target, part)
    return target


def _import(name: str):
    try:
        return importlib.import_module(name)
    except Exception as error:  # noqa: BLE001 - ImportError, or the module's own code failing
        raise CnnlabError(f"cannot import {name}: {_first_line(error)}") from None


def _load_file(path: str):
    file = Path(path)
    if not file.is_file():
        raise CnnlabError(f"no file {path}: give the path of a Python file, e.g. models/net.py:Net")
    name = "cnnlab_user_model_" + hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look a class's module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # noqa: BLE001 - the user's file failing as it runs
        del sys.modules[name]
        raise CnnlabError(f"loading {path} failed: {_first_line(error)}") from None
    return module


def _timm_builder(name: str):
    try:
        import timm
    except ImportError:
        raise CnnlabError(f"timm:{name} needs timm, which is not installed: pip install timm") from None
    if not timm.is_model(name):
        close = timm.list_models(f"*{name}*")[:3]
        raise CnnlabError(f"timm has no model '{name}'" + (f": did you mean {', '.join(close)}?" if close else ""))

    def build(**kwargs):
        return timm.create_model(name, pretrained=False, **kwargs)

    build.__name__ = f"timm:{name}"
    return build


def _check_arguments(spec: str, target, kwargs: dict) -> None:
    """Arguments the constructor cannot take, named before it runs (its own TypeError can come
    from deep inside)."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):  # a builtin without a signature: let the call speak
        return
    parameters = signature.parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return
    takes = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(kwargs) - set(takes))
    if unknown:
        raise CnnlabError(f"{spec} does not take {', '.join(unknown)}; it takes: {', '.join(takes) or 'no arguments'}")
    missing = [p.name for p in parameters
               if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in kwargs]
    if missing:
        raise CnnlabError(f"{spec} needs {', '.join(missing)}: give --arg {missing[0]}=VALUE")


def _checked(spec: str, model) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise CnnlabError(f"{spec} returned a {type(model).__name__}, not an nn.Module")
    return model


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
