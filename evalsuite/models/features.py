"""Penultimate features: the input of the last linear layer, recorded in the same forward pass as the logits.

Eager modules (zoo models, foreign state_dicts, pickled modules, wrappers around them) are tapped with a
forward pre-hook on the layer. TorchScript modules refuse hooks, so a scripted part is run through a copy of
its inlined graph that returns the linear layer's input as a second output (same weights, same ops: still
one pass). A torch.export module has no ``nn.Linear`` submodules left to name; it is refused with a message.

``layer`` (``--feature-layer NAME``) names any module by its ``named_modules()`` name; its *input* is
recorded. Inputs of rank 4 (conv feature maps ``[B, C, H, W]``) are global-average-pooled to ``[B, C]``, as
Lee et al. do for intermediate layers; other ranks are flattened to ``[B, -1]``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from evalsuite.core.errors import UsageError

log = logging.getLogger(__name__)

FEATURE_FLOAT16_BYTES = 10**9
"""Features kept in float32 larger than this (1 GB) are stored as float16 instead."""
_FLOAT16_MAX = float(np.finfo(np.float16).max)


@dataclass(frozen=True)
class LogitsAndFeatures:
    """One pass over a dataset: ``logits`` float32 ``[N, K]``, ``features`` ``[N, D]`` (float32 or float16).

    ``layer`` is the module whose input ``features`` is; ``head_is_logits`` says whether ``W f + b`` of that
    layer reproduced the logits on the first batch (None when the layer is not linear). ReAct and ViM
    assume it does.
    """

    logits: np.ndarray
    features: np.ndarray
    layer: str
    head_is_logits: bool | None


def _is_script(m: nn.Module) -> bool:
    return isinstance(m, torch.jit.ScriptModule)


def _is_linear(m: nn.Module) -> bool:
    if isinstance(m, nn.Linear):
        return True
    return _is_script(m) and getattr(m, "original_name", None) == "Linear"


def find_last_linear(model: nn.Module) -> str:
    """The ``named_modules()`` name of the last linear layer (``nn.Linear``, scripted ones included).

    "Last" is registration order, which is the classifier in every zoo model and in torchvision's; pass
    ``--feature-layer`` where a model registers its classifier earlier than another linear layer.
    """
    last = None
    for name, module in model.named_modules():
        if _is_linear(module):
            last = name
    if last is None:
        hint = (
            " (a torch.export module keeps no nn.Linear submodules)"
            if isinstance(model, torch.fx.GraphModule)
            or any(isinstance(m, torch.fx.GraphModule) for m in model.modules())
            else ""
        )
        raise UsageError(f"the model has no linear layer whose input could be its features{hint}")
    if last == "":
        raise UsageError("the model is a single linear layer: its input is the image, not features")
    return last


def _named(model: nn.Module, layer: str | None) -> tuple[str, nn.Module]:
    name = find_last_linear(model) if layer is None else layer
    modules = dict(model.named_modules())
    if name not in modules:
        names = [n for n in modules if n]
        shown = ", ".join(names[-12:])
        raise UsageError(f"--feature-layer {name!r}: no such module (the last ones: {shown})")
    if name == "":
        raise UsageError("--feature-layer must name a submodule, not the whole model")
    return name, modules[name]


def linear_head(model: nn.Module, layer: str | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """``(weight [K, D], bias [K])`` float64 of the feature layer if it is linear (zero bias if it has none).

    None when ``layer`` names a non-linear module (ReAct and ViM then cannot run).
    """
    _, module = _named(model, layer)
    if not _is_linear(module):
        return None
    weight, b = _weight_bias(module)
    w = weight.detach().double().cpu().numpy()
    bias = b.detach().double().cpu().numpy() if b is not None else np.zeros(w.shape[0])
    return w, bias


def _weight_bias(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    weight = getattr(module, "weight", None)
    bias = getattr(module, "bias", None)
    if not isinstance(weight, torch.Tensor):
        raise UsageError(f"linear layer {type(module).__name__} has no weight tensor")
    return weight, bias if isinstance(bias, torch.Tensor) else None


def feature_storage_dtype(n: int, dim: int, limit_bytes: int = FEATURE_FLOAT16_BYTES) -> np.dtype:
    """float16 when ``n x dim`` float32 features would pass ``limit_bytes`` (1 GB), else float32."""
    return np.dtype(np.float16) if 4 * int(n) * int(dim) > limit_bytes else np.dtype(np.float32)


def _pool(t: torch.Tensor) -> torch.Tensor:
    if t.ndim == 2:
        return t
    if t.ndim == 4:
        return t.mean(dim=(2, 3))
    return t.flatten(1)


# ------------------------------------------------------------------------------------------ TorchScript


def _attr_path(value: torch._C.Value) -> str:
    parts = []
    node = value.node()
    while node.kind() == "prim::GetAttr":
        parts.append(node.s("name"))
        value = node.input()
        node = value.node()
    return ".".join(reversed(parts))


def _script_feature_fn(script: torch.jit.ScriptModule, sub: str, where: str) -> Callable[..., Any]:
    """A function ``fn(*inputs) -> (output, input of linear ``sub``)`` running ``script``'s own graph."""
    graph = script.inlined_graph  # a copy: the module keeps its own
    hits = [
        n
        for n in graph.nodes()
        if n.kind() == "aten::linear" and _attr_path(list(n.inputs())[1]) == f"{sub}.weight"
    ]
    if len(hits) != 1:
        what = "is not called as a linear layer" if not hits else f"runs {len(hits)} times"
        raise UsageError(
            f"--feature-layer {where}: in a TorchScript model only a linear layer called once can give "
            f"features, and this one {what}"
        )
    target = next(iter(hits[0].inputs()))
    ret = graph.return_node()
    out = ret.input()
    tup = graph.create("prim::TupleConstruct", [out, target], 1)
    tup.insertBefore(ret)
    tup.output().setType(torch._C.TupleType([out.type(), target.type()]))
    ret.replaceInput(0, tup.output())
    try:
        graph.lint()
        fn = torch._C._create_function_from_graph("forward_with_features", graph)
    except RuntimeError as e:  # the input lives inside a control-flow block, not at the graph's top level
        first = str(e).strip().splitlines()[0][:200]
        raise UsageError(
            f"--feature-layer {where}: cannot tap it in this TorchScript graph ({first})"
        ) from None
    return lambda *inputs: fn(script._c, *inputs)


class _ScriptTap(nn.Module):
    """Stands in for a scripted module during the pass: same output, and records the features."""

    def __init__(self, fn: Callable[..., Any], sink: list[torch.Tensor]) -> None:
        super().__init__()
        self.fn, self.sink = fn, sink

    def forward(self, *inputs: Any) -> Any:
        """The scripted module's output; its tapped input goes to the sink."""
        out, feats = self.fn(*inputs)
        self.sink.append(feats)
        return out


@contextlib.contextmanager
def feature_tap(model: nn.Module, layer: str | None = None) -> Iterator[tuple[Callable[..., Any], list, str]]:
    """Within the block, ``run(x)`` is ``model(x)`` and appends the layer's raw input to ``sink``.

    Yields ``(run, sink, layer_name)``. The model is restored on exit (a scripted child replaced for the
    block is put back).
    """
    name, module = _named(model, layer)
    sink: list[torch.Tensor] = []
    parts = name.split(".")
    # the first scripted module on the path from the root to the layer's parent, if any
    holder: nn.Module = model
    for i in range(len(parts)):
        if _is_script(holder):
            assert isinstance(holder, torch.jit.ScriptModule)
            fn = _script_feature_fn(holder, ".".join(parts[i:]), name)
            tap = _ScriptTap(fn, sink)
            if i == 0:
                yield tap, sink, name
                return
            parent = model.get_submodule(".".join(parts[: i - 1])) if i > 1 else model
            child = parts[i - 1]
            setattr(parent, child, tap)
            try:
                yield model, sink, name
            finally:
                setattr(parent, child, holder)
            return
        child_module = holder._modules[parts[i]]
        assert child_module is not None  # _named found the layer, so every step of its path exists
        holder = child_module

    def hook(_module: nn.Module, inputs: tuple[Any, ...]) -> None:
        sink.append(inputs[0])

    if _is_script(module):
        # a scripted leaf under eager parents: record its input through a stand-in that calls it
        parent = model.get_submodule(".".join(parts[:-1])) if len(parts) > 1 else model
        scripted = module

        def call(*inputs: Any) -> tuple[Any, Any]:
            return scripted(*inputs), inputs[0]

        setattr(parent, parts[-1], _ScriptTap(call, sink))
        try:
            yield model, sink, name
        finally:
            setattr(parent, parts[-1], scripted)
        return
    handle = module.register_forward_pre_hook(hook)
    try:
        yield model, sink, name
    finally:
        handle.remove()


def _head_check(module: nn.Module, feats: torch.Tensor, logits: torch.Tensor) -> bool | None:
    if not _is_linear(module) or feats.ndim != 2 or logits.ndim != 2:
        return None
    weight, b = _weight_bias(module)
    w = weight.to(feats.device, torch.float64)
    z = feats.double() @ w.T
    if b is not None:
        z = z + b.to(feats.device, torch.float64)
    if z.shape != logits.shape:
        return False
    return bool(torch.allclose(z, logits.double(), rtol=1e-3, atol=1e-4))


@torch.inference_mode()
def penultimate_features(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    layer: str | None = None,
    device: torch.device | None = None,
    feature_dtype: np.dtype | type | None = None,
    progress: object | None = None,
) -> LogitsAndFeatures:
    """Logits and features of ``model`` (eval mode, set here) over ``batches`` [B, C, H, W], ONE forward pass.

    ``layer`` None taps the input of the last linear layer (``find_last_linear``). ``device`` moves each
    batch there (default: leave it where it is). ``feature_dtype`` is the stored dtype (default float32;
    see ``feature_storage_dtype``); float16 storage falls back to float32 if a value would overflow.
    ``progress.update(n)`` is called per batch when given.
    """
    model.eval()
    store = np.dtype(feature_dtype) if feature_dtype is not None else np.dtype(np.float32)
    if store not in (np.dtype(np.float32), np.dtype(np.float16)):
        raise UsageError(f"features are stored as float32 or float16, not {store}")
    logits_out: list[np.ndarray] = []
    feats_out: list[np.ndarray] = []
    head: bool | None = None
    _, module = _named(model, layer)
    with feature_tap(model, layer) as (run, sink, name):
        for i, x in enumerate(batches):
            if device is not None:
                x = x.to(device, non_blocking=True)
            sink.clear()
            z = run(x)
            if len(sink) != 1:
                raise UsageError(
                    f"feature layer {name!r} ran {len(sink)} times in one forward pass; "
                    "pass --feature-layer naming a module that runs exactly once"
                )
            raw = sink[0]
            if not isinstance(z, torch.Tensor) or not isinstance(raw, torch.Tensor):
                raise UsageError(f"the model or feature layer {name!r} does not return a tensor")
            feats = _pool(raw.float())
            if i == 0:
                head = _head_check(module, feats, z.float())
            f_np = feats.cpu().numpy()
            if store == np.float16 and f_np.size and float(np.abs(f_np).max()) > _FLOAT16_MAX:
                log.warning("features exceed the float16 range; keeping float32")
                store = np.dtype(np.float32)
                feats_out = [a.astype(np.float32) for a in feats_out]
            feats_out.append(f_np.astype(store, copy=False))
            logits_out.append(z.float().cpu().numpy())
            if progress is not None:
                progress.update(int(x.shape[0]))  # type: ignore[attr-defined]
    if not logits_out:
        raise UsageError("no batches to compute features on")
    return LogitsAndFeatures(
        logits=np.concatenate(logits_out),
        features=np.concatenate([a.astype(store, copy=False) for a in feats_out]),
        layer=name,
        head_is_logits=head,
    )
