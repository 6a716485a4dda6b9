"""B models of one architecture as one set of stacked tensors.

Parameters and buffers of the B models are stacked along a new leading dimension
(``torch.func.stack_module_state``'s layout: ``params[name]`` is (B, *shape)); a copy of
the first model on the ``meta`` device keeps the structure for ``functional_call``. Row
b is run b: :meth:`StackedModel.state_dict` gives it back as an ordinary state dict
(the keys and order of ``model.state_dict()``), loadable into the model alone.

Models whose training differs per batch element are refused (:class:`BatchedModelError`):
batch normalization (its running statistics are mutated in the forward pass) and active
dropout (its randomness cannot be drawn as the run alone draws it).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from sweeplab.errors import SweeplabError


class BatchedModelError(SweeplabError, ValueError):
    """A model (or set of models) that cannot be trained as one batch."""


def check_batchable(model: nn.Module) -> None:
    """Raise :class:`BatchedModelError` for modules that train differently in a batch."""
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            raise BatchedModelError(
                f"module {name or type(module).__name__} is batch normalization: its running "
                "statistics change in the forward pass, which a batched step cannot reproduce")
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p > 0:
            raise BatchedModelError(
                f"module {name} is dropout (p={module.p}): its random masks cannot be drawn "
                "as the run alone draws them; use p=0 or train alone")


def signature(model: nn.Module) -> list[tuple]:
    """Names, shapes, dtypes and trainability of every parameter and buffer."""
    params = [(n, tuple(p.shape), p.dtype, p.requires_grad) for n, p in model.named_parameters()]
    buffers = [(n, tuple(b.shape), b.dtype) for n, b in model.named_buffers()]
    return [type(model).__name__, *params, "buffers", *buffers]


class StackedModel:
    """B copies of one architecture with stacked parameters (see the module docstring).

    The trainable parameters of run b are consecutive blocks of one row ``flat[b]`` of a
    (B, P) tensor, so an optimizer step is a few operations on all of them at once;
    ``params[name]`` is the (B, *shape) view of each (frozen ones stacked apart), in
    ``model.parameters()`` order. ``trainable`` names the parameters with
    ``requires_grad``, ``buffers`` holds the stacked buffers.
    """

    def __init__(self, models: Sequence[nn.Module], device: torch.device | str = "cpu"):
        if not models:
            raise BatchedModelError("no models to stack")
        first = models[0]
        check_batchable(first)
        reference = signature(first)
        for i, model in enumerate(models[1:], start=1):
            if signature(model) != reference:
                raise BatchedModelError(
                    f"model {i} differs from model 0 in its parameters or buffers "
                    "(names, shapes, dtypes, trainability): one batch needs one architecture")
        self.names = [n for n, _ in first.named_parameters()]
        self.trainable = [n for n, p in first.named_parameters() if p.requires_grad]
        self.frozen = [n for n, p in first.named_parameters() if not p.requires_grad]
        if not self.trainable:
            raise BatchedModelError("the model has no trainable parameters")
        with torch.no_grad():
            stacked = {n: torch.stack([dict(m.named_parameters())[n].detach()
                                       for m in models]).to(device) for n in self.names}
            self.buffers = {n: torch.stack([dict(m.named_buffers())[n].detach()
                                            for m in models]).to(device)
                            for n, _ in first.named_buffers()}
        self.layout: list[tuple[str, int, int, tuple[int, ...]]] = []
        offset = 0
        for n in self.trainable:
            shape = tuple(stacked[n].shape[1:])
            self.layout.append((n, offset, offset + stacked[n][0].numel(), shape))
            offset = self.layout[-1][2]
        b = len(models)
        self._frozen = {n: stacked[n] for n in self.frozen}
        self.set_flat(torch.cat([stacked[n].reshape(b, -1) for n in self.trainable], dim=1))
        owner = {id(t): n for n, t in [*first.named_parameters(), *first.named_buffers()]}
        self._state_keys = [(key, owner[id(t)])
                            for key, t in first.state_dict(keep_vars=True).items()]
        self.base = copy.deepcopy(first).to("meta")
        self.device = torch.device(device)

    @property
    def size(self) -> int:
        """B, the number of models."""
        return len(self.flat)

    @property
    def dtype(self) -> torch.dtype:
        return self.flat.dtype

    def n_parameters(self) -> int:
        """Trainable parameters of one model."""
        return self.flat.shape[1]

    def views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each trainable parameter's (B, *shape) view of a (B, P) tensor in this layout."""
        return {n: flat[:, a:e].view(len(flat), *shape) for n, a, e, shape in self.layout}

    def flatten(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, P): per-parameter (B, *shape) tensors (gradients, say) in this layout."""
        return torch.cat([tensors[n].reshape(len(tensors[n]), -1) for n in self.trainable],
                         dim=1)

    def split_row(self, name: str, row: torch.Tensor) -> dict[str, torch.Tensor]:
        """The parameters' views of one row (P,) of a tensor in this layout."""
        return {n: row[a:e].view(shape) for n, a, e, shape in self.layout}

    def set_flat(self, flat: torch.Tensor) -> None:
        """Make ``flat`` (B, P) the trainable parameters."""
        self.flat = flat
        views = self.views(flat)
        self.params = {n: views[n] if n in views else self._frozen[n] for n in self.names}

    def select(self, rows: Sequence[int]) -> None:
        """Keep the models ``rows`` (in that order)."""
        index = torch.as_tensor(list(rows), dtype=torch.long, device=self.device)
        self._frozen = {n: t.index_select(0, index) for n, t in self._frozen.items()}
        self.buffers = {n: t.index_select(0, index) for n, t in self.buffers.items()}
        self.set_flat(self.flat.index_select(0, index))

    def tensors(self, params: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Every stacked parameter and buffer by name (``params`` replacing the trainable)."""
        return {**self.params, **(params or {}), **self.buffers}

    def state_dict(self, row: int) -> OrderedDict[str, torch.Tensor]:
        """Model ``row`` as ``model.state_dict()`` would give it (CPU copies)."""
        tensors = self.tensors()
        return OrderedDict((key, tensors[name][row].detach().to("cpu", copy=True))
                           for key, name in self._state_keys)

    def load_row(self, row: int, state: dict[str, torch.Tensor]) -> None:
        """Set model ``row`` from an ordinary state dict of the architecture."""
        tensors = self.tensors()
        with torch.no_grad():
            for key, name in self._state_keys:
                tensors[name][row].copy_(state[key])
