"""FSDP2 (``torch.distributed.fsdp.fully_shard``) pieces of the data-parallel trainer.

onerec shards one wrapper module (:class:`onerec.training.ddp.CallWithModel`) around the whole model: parameters,
gradients and AdamW state live sharded across ranks (each rank holds ``1/world`` of them); a
forward all-gathers the parameters, the backward reduce-scatters the gradients. Checkpoints are
gathered into the **same single-file format** a single process writes (``model.safetensors``
with plain tensors, ``optimizer.safetensors`` keyed by parameter index), so a run can be resumed
or evaluated with any number of processes and any strategy.

Works on CPU with gloo as well as on CUDA with NCCL (checked with torch 2.13).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor

from onerec.errors import CheckpointError
from onerec.training.checkpoint import (
    MODEL_FILE,
    OPTIMIZER_FILE,
    load_optimizer_state,
    safetensors_to_state_dict,
)
from onerec.training.ddp import CallWithModel

PREFIX = "inner."  # CallWithModel keeps the model as ``self.inner``


# nn.Module's hook tables (OrderedDicts keyed by handle id). fully_shard registers state-dict
# hooks on every module that owns a parameter; :func:`unshard_model` removes exactly those.
_HOOK_TABLES = (
    "_forward_pre_hooks",
    "_forward_hooks",
    "_backward_pre_hooks",
    "_backward_hooks",
    "_state_dict_pre_hooks",
    "_state_dict_hooks",
    "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
)
_HOOK_SIDE_TABLES = (
    "_forward_pre_hooks_with_kwargs",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
)


class ShardedModel:
    """A model sharded with FSDP2 through a :class:`CallWithModel` wrapper, and the hooks that
    were on its modules before (so they can be told apart from the ones FSDP2 adds)."""

    def __init__(self, model: nn.Module, device: torch.device, world: int) -> None:
        self.model = model
        self.hooks_before = {
            id(module): {table: set(getattr(module, table, {})) for table in _HOOK_TABLES}
            for module in model.modules()
        }
        self.wrapper = CallWithModel(model)
        fully_shard(self.wrapper, mesh=init_device_mesh(device.type, (world,)))

    def remove_added_hooks(self) -> None:
        """Drop the hooks FSDP2 registered on the model's own modules."""
        for module in self.model.modules():
            before = self.hooks_before.get(id(module), {})
            for table in _HOOK_TABLES:
                hooks = getattr(module, table, None)
                if hooks is None:
                    continue
                for key in [k for k in hooks if k not in before.get(table, set())]:
                    del hooks[key]
                    for side in _HOOK_SIDE_TABLES:
                        getattr(module, side, {}).pop(key, None)


class _StateHolder:
    """Duck-types ``.state_dict()`` (for the single-process checkpoint writers) and
    ``.load_state_dict()`` (to capture what the readers rebuild)."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        self.state = state or {}

    def state_dict(self) -> dict[str, Any]:
        return self.state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = state


def full_model_state(wrapper: nn.Module, rank0_only: bool) -> dict[str, torch.Tensor]:
    """The unsharded model state (keys as the bare model names them), on every rank, or only on
    rank 0 (others get ``{}``) when ``rank0_only`` (then offloaded to CPU). Collective."""
    options = StateDictOptions(full_state_dict=True, cpu_offload=rank0_only)
    state: dict[str, Any] = get_model_state_dict(wrapper, options=options)
    return {key.removeprefix(PREFIX): value for key, value in state.items()}


def full_optimizer_state(wrapper: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The unsharded optimizer state in ``torch.optim``'s own layout (state keyed by parameter
    index, in param-group order) — what the optimizer of a single-process run would return.
    Present on rank 0 only (``{}`` elsewhere). Collective."""
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    by_name: dict[str, Any] = get_optimizer_state_dict(wrapper, optimizer, options=options)
    if not by_name:
        return {}
    index: dict[str, int] = {}
    groups = []
    for group in by_name["param_groups"]:
        ids = []
        for name in group["params"]:
            index[name] = len(index)
            ids.append(index[name])
        groups.append({**group, "params": ids})
    state = {index[name]: values for name, values in by_name["state"].items()}
    return {"state": state, "param_groups": groups}


def save_sharded_checkpoint_parts(
    wrapper: nn.Module, optimizer: torch.optim.Optimizer | None
) -> tuple[_StateHolder, _StateHolder | None]:
    """Gather model and optimizer state for writing (collective; full only on rank 0)."""
    model_state = _StateHolder(full_model_state(wrapper, rank0_only=True))
    optim_state = _StateHolder(full_optimizer_state(wrapper, optimizer)) if optimizer else None
    return model_state, optim_state


def load_into_sharded(
    directory: Path, wrapper: nn.Module, optimizer: torch.optim.Optimizer | None
) -> None:
    """Load a single-format checkpoint directory into the sharded model (and optimizer).

    Every rank reads the files (they must be on a file system all ranks see) and keeps its shard.
    """
    model_path = directory / MODEL_FILE
    if not model_path.is_file():
        raise CheckpointError(f"{model_path} does not exist (incomplete checkpoint?)")
    full = safetensors_to_state_dict(model_path.read_bytes(), str(model_path))
    # Sorted: safetensors returns keys in a per-process hash order, and the loader runs one
    # collective per key, so every rank must walk the keys in the same order.
    ordered: dict[str, Any] = {PREFIX + key: full[key] for key in sorted(full)}
    options = StateDictOptions(full_state_dict=True, strict=True)
    try:
        set_model_state_dict(wrapper, ordered, options=options)
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{model_path} does not match this model: {exc}") from None
    if optimizer is None:
        return
    holder = _StateHolder()
    load_optimizer_state(holder, directory / OPTIMIZER_FILE)  # type: ignore[arg-type]
    names = [PREFIX + name for group in _named_param_groups(wrapper, optimizer) for name in group]
    by_index: dict[str, Any] = holder.state
    if len(names) != sum(len(g["params"]) for g in by_index["param_groups"]):
        raise CheckpointError(f"{directory / OPTIMIZER_FILE} does not match this optimizer")
    by_name: dict[str, Any] = {
        "state": {  # parameter order on every rank (see the sorting note above)
            names[int(i)]: {key: values[key] for key in sorted(values)}
            for i, values in sorted(by_index["state"].items(), key=lambda kv: int(kv[0]))
        },
        "param_groups": [
            {**group, "params": [names[int(i)] for i in group["params"]]}
            for group in by_index["param_groups"]
        ],
    }
    set_optimizer_state_dict(wrapper, optimizer, by_name, options=options)


def _named_param_groups(wrapper: nn.Module, optimizer: torch.optim.Optimizer) -> list[list[str]]:
    """Parameter names (relative to the bare model) of each optimizer param group, in order."""
    name_of = {id(p): n.removeprefix(PREFIX) for n, p in wrapper.named_parameters()}
    return [[name_of[id(p)] for p in group["params"]] for group in optimizer.param_groups]


def unshard_model(sharded: ShardedModel) -> None:
    """Turn the model's sharded ``DTensor`` parameters back into plain full parameters and
    remove FSDP2's hooks from its modules (collective: all-gathers the weights).

    Afterwards the model is an ordinary module again (the forward hooks live on the discarded
    wrapper): recipes evaluate and save it as in a single process. Tied parameters stay tied.
    """
    full_state = full_model_state(sharded.wrapper, rank0_only=False)
    sharded.remove_added_hooks()
    model = sharded.model
    replaced: dict[int, nn.Parameter] = {}
    for module_name, module in model.named_modules():
        for name, param in list(module._parameters.items()):
            if param is None or not isinstance(param, DTensor):
                continue
            if id(param) not in replaced:
                key = f"{module_name}.{name}" if module_name else name
                value = full_state[key].detach().to(param.device).clone()
                replaced[id(param)] = nn.Parameter(value, requires_grad=param.requires_grad)
            module._parameters[name] = replaced[id(param)]
