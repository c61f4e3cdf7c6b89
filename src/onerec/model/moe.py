"""Sparse Mixture-of-Experts feed-forward (and the dense FFN it is ablated against).

Shape of a layer, following torchtune's ``modules/moe``: a :class:`TopKRouter` picks ``k`` of
``N`` experts per token, :class:`GroupedExperts` holds the ``N`` expert MLPs as batched weights,
and :class:`MoEFeedForward` wires them together. Every FFN here has the same call signature,
``ffn(x [B, T, d], token_mask [B, T] | None) -> (y [B, T, d], MoEStats | None)``, so a decoder
layer takes any of them by injection.

Dispatch groups the ``tokens * k`` (token, expert) assignments by expert with one stable
argsort, runs one matmul pair per expert on its contiguous slice, scales by the gate and
scatter-adds back with ``index_add_`` — no Python loop over tokens. The loop over experts is the
faster choice on CPU (measured against a capacity-padded ``bmm`` in ``docs/generator.md``).
:func:`dense_reference_moe` runs every expert on every token: the slow reference for parity.

Load balancing:

* ``aux_loss`` — the Switch/GShard auxiliary loss ``N · Σ_i f_i · P_i`` with ``f_i`` the
  fraction of the ``tokens * k`` assignments that went to expert ``i`` and ``P_i`` the mean
  router probability of expert ``i``; it is 1 at perfect balance. The trainer adds
  ``aux_loss_weight * aux_loss`` to the objective.
* ``bias`` — auxiliary-loss-free balancing (Wang et al. 2024, DeepSeek-V3): a per-expert bias
  added to the scores **for selection only**; after each training forward it moves by
  ``bias_update_rate * sign(mean_load - load_i)``. Gates still come from the unbiased probs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import distributed as dist
from torch import nn

LoadBalance = Literal["aux_loss", "bias", "both", "none"]


@dataclass
class MoEStats:
    """What one MoE layer reports for the loss and for logging."""

    aux_loss: torch.Tensor  # scalar, N · Σ f_i P_i (differentiable through P_i)
    expert_load: torch.Tensor  # [N] fraction of assignments per expert (sums to 1), detached


@dataclass
class Routing:
    """Top-k decision for a flat batch of tokens."""

    expert_index: torch.Tensor  # [A, k] long
    gates: torch.Tensor  # [A, k] weights applied to the chosen experts' outputs
    probs: torch.Tensor  # [A, N] router softmax


def switch_aux_loss(
    probs: torch.Tensor,
    expert_index: torch.Tensor,
    num_experts: int,
    counts: torch.Tensor | None = None,
) -> torch.Tensor:
    """``N · Σ_i f_i · P_i`` for router ``probs [A, N]`` and chosen ``expert_index [A, k]``.

    ``f_i = count_i / Σ count`` (non-differentiable), ``P_i = mean_t probs[t, i]``. ``counts
    [N]`` defaults to this batch's assignment counts (``Σ count = A · k``); data-parallel
    training passes the counts of the whole global batch (:func:`data_parallel_expert_counts`).
    """
    if expert_index.numel() == 0 or probs.shape[0] == 0:
        return probs.sum() * 0.0
    if counts is None:
        counts = torch.bincount(expert_index.reshape(-1), minlength=num_experts)
    counts = counts.to(probs.dtype)
    fraction = counts / counts.sum()  # [N]
    mean_prob = probs.mean(dim=0)  # [N]
    return num_experts * torch.sum(fraction * mean_prob)


def data_parallel_expert_counts(counts: torch.Tensor) -> torch.Tensor:
    """Expert assignment counts ``[N]`` summed over the ranks of a data-parallel training step.

    The Switch aux loss ``N · Σ_i f_i · P_i`` is a product of two batch-level averages, so
    per-rank values do not average to the single-process value. With ``f_i`` taken from the
    global batch's counts (this all-reduce) and ``P_i`` from the rank's own tokens, the trainer's
    token-weighted mean over ranks (``LossOutput.weight`` = routed tokens) is exactly the
    single-process aux loss, value and gradient; the aux-loss-free bias update also sees the
    global load, so every rank moves its bias as one process would. Counts carry no gradient.

    Identity without a torch.distributed process group of more than one process.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return counts
    total = counts.detach().to(torch.float64)  # exact integer sums, any backend
    dist.all_reduce(total)
    return total.to(counts.dtype)


class TopKRouter(nn.Module):
    """Linear router with top-k selection and optional gate renormalisation."""

    expert_bias: torch.Tensor

    def __init__(
        self,
        d_model: int,
        num_experts: int,
        top_k: int,
        renormalize: bool = True,
        load_balance: LoadBalance = "aux_loss",
        bias_update_rate: float = 1e-3,
    ) -> None:
        super().__init__()
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"top_k must lie in [1, {num_experts}], got {top_k}")
        self.num_experts, self.top_k = num_experts, top_k
        self.renormalize = renormalize
        self.load_balance = load_balance
        self.bias_update_rate = bias_update_rate
        self.gate = nn.Linear(d_model, num_experts, bias=False)
        # Selection bias of the aux-loss-free method; a buffer: it is not trained by gradients.
        self.register_buffer("expert_bias", torch.zeros(num_experts))

    def forward(self, x: torch.Tensor) -> Routing:
        """Route ``x [A, d]``."""
        probs = torch.softmax(self.gate(x), dim=-1)  # [A, N]
        selection = probs
        if self.load_balance in ("bias", "both"):
            selection = probs + self.expert_bias
        expert_index = torch.topk(selection, self.top_k, dim=-1).indices  # [A, k]
        gates = probs.gather(1, expert_index)  # [A, k]
        if self.renormalize:
            gates = gates / gates.sum(dim=-1, keepdim=True)
        return Routing(expert_index=expert_index, gates=gates, probs=probs)

    @torch.no_grad()
    def update_bias(self, expert_index: torch.Tensor, counts: torch.Tensor | None = None) -> None:
        """One aux-loss-free step: raise the bias of under-loaded experts, lower over-loaded.

        ``counts [N]`` overrides the counts of ``expert_index`` (data parallel: global counts).
        """
        if counts is None:
            counts = torch.bincount(expert_index.reshape(-1), minlength=self.num_experts)
        counts = counts.float()
        self.expert_bias += self.bias_update_rate * torch.sign(counts.mean() - counts)


class GroupedExperts(nn.Module):
    """``N`` GELU MLPs ``d -> hidden -> d`` stored as batched weights."""

    def __init__(self, d_model: int, hidden: int, num_experts: int, out_std: float = 0.02) -> None:
        super().__init__()
        self.w_in = nn.Parameter(torch.randn(num_experts, d_model, hidden) * 0.02)
        self.b_in = nn.Parameter(torch.zeros(num_experts, hidden))
        self.w_out = nn.Parameter(torch.randn(num_experts, hidden, d_model) * out_std)
        self.b_out = nn.Parameter(torch.zeros(num_experts, d_model))

    @property
    def num_experts(self) -> int:
        return self.w_in.shape[0]

    def expert(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Expert ``index`` on ``x [n, d]`` -> ``[n, d]``."""
        h = F.gelu(torch.addmm(self.b_in[index], x, self.w_in[index]))  # [n, hidden]
        return torch.addmm(self.b_out[index], h, self.w_out[index])  # [n, d]

    def forward(self, x_sorted: torch.Tensor, counts: list[int]) -> torch.Tensor:
        """``x_sorted [A*k, d]`` grouped by expert (``counts[e]`` rows each) -> ``[A*k, d]``."""
        outputs = []
        start = 0
        for index, count in enumerate(counts):
            if count:
                outputs.append(self.expert(index, x_sorted[start : start + count]))
            start += count
        if not outputs:
            return x_sorted.new_zeros(x_sorted.shape)
        return torch.cat(outputs, dim=0)


class MoEFeedForward(nn.Module):
    """Sparse MoE FFN: router + grouped experts, returning :class:`MoEStats`."""

    def __init__(self, router: TopKRouter, experts: GroupedExperts) -> None:
        super().__init__()
        if router.num_experts != experts.num_experts:
            raise ValueError("router and experts disagree on the number of experts")
        self.router = router
        self.experts = experts

    def forward(
        self, x: torch.Tensor, token_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, MoEStats]:
        """``x [B, T, d]``; only tokens with ``token_mask`` True are routed (others give 0)."""
        batch, length, width = x.shape
        flat = x.reshape(-1, width)  # [B*T, d]
        real_rows: torch.Tensor | None = None
        if token_mask is not None and not bool(token_mask.all()):
            real_rows = token_mask.reshape(-1).nonzero().squeeze(1)  # [A]
            flat = flat.index_select(0, real_rows)  # [A, d]
        routing = self.router(flat)
        top_k = routing.expert_index.shape[1]
        flat_expert = routing.expert_index.reshape(-1)  # [A*k]
        order = torch.argsort(flat_expert, stable=True)  # assignments grouped by expert
        token_of_assignment = order // top_k  # [A*k]
        counts_tensor = torch.bincount(flat_expert, minlength=self.router.num_experts)
        x_sorted = flat.index_select(0, token_of_assignment)  # [A*k, d]
        out_sorted = self.experts(x_sorted, counts_tensor.tolist())  # [A*k, d]
        out_sorted = out_sorted * routing.gates.reshape(-1)[order].unsqueeze(1)
        combined = torch.zeros_like(flat).index_add_(0, token_of_assignment, out_sorted)  # [A, d]
        if real_rows is not None:
            full = x.new_zeros(batch * length, width)
            combined = full.index_copy_(0, real_rows, combined)
        balance_counts = counts_tensor  # [N] what load balancing sees
        if self.training and torch.is_grad_enabled():  # a data-parallel training step
            balance_counts = data_parallel_expert_counts(counts_tensor)
        if self.training and self.router.load_balance in ("bias", "both"):
            self.router.update_bias(routing.expert_index, balance_counts)
        stats = MoEStats(
            aux_loss=switch_aux_loss(
                routing.probs, routing.expert_index, self.router.num_experts, balance_counts
            ),
            expert_load=(balance_counts.to(x.dtype) / balance_counts.sum().clamp(min=1)).detach(),
        )
        return combined.view(batch, length, width), stats


def dense_reference_moe(moe: MoEFeedForward, x: torch.Tensor) -> torch.Tensor:
    """Plain reference: every expert on every token, weighted by the routing gates.

    ``x [B, T, d] -> [B, T, d]``; equal to ``moe(x)[0]`` up to float rounding.
    """
    batch, length, width = x.shape
    flat = x.reshape(-1, width)
    routing = moe.router(flat)
    weights = torch.zeros_like(routing.probs).scatter(1, routing.expert_index, routing.gates)
    out = torch.zeros_like(flat)
    for index in range(moe.experts.num_experts):
        out = out + weights[:, index : index + 1] * moe.experts.expert(index, flat)
    return out.view(batch, length, width)


class DenseFeedForward(nn.Module):
    """GELU MLP ``d -> hidden -> d`` with the MoE call signature (for encoder and ablation)."""

    def __init__(self, d_model: int, hidden: int, out_std: float = 0.02) -> None:
        super().__init__()
        self.fc_in = nn.Linear(d_model, hidden)
        self.fc_out = nn.Linear(hidden, d_model)
        nn.init.normal_(self.fc_out.weight, std=out_std)

    def forward(
        self, x: torch.Tensor, token_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, None]:
        del token_mask  # a dense FFN treats every position alike
        return self.fc_out(F.gelu(self.fc_in(x))), None  # [B, T, d]


def build_ffn(
    kind: Literal["moe", "dense"],
    d_model: int,
    expert_hidden: int,
    num_experts: int,
    top_k: int,
    num_layers: int,
    renormalize: bool = True,
    load_balance: LoadBalance = "aux_loss",
    bias_update_rate: float = 1e-3,
) -> nn.Module:
    """The decoder FFN: sparse MoE, or a dense FFN with the same *active* width ``k · hidden``."""
    out_std = 0.02 / math.sqrt(2 * num_layers)  # GPT-2 scaling of residual projections
    if kind == "dense":
        return DenseFeedForward(d_model, top_k * expert_hidden, out_std=out_std)
    router = TopKRouter(d_model, num_experts, top_k, renormalize, load_balance, bias_update_rate)
    return MoEFeedForward(router, GroupedExperts(d_model, expert_hidden, num_experts, out_std))


# -- inference fast path (eval / generation) -------------------------------------------------
# Below this many multiply-adds (tokens x experts x d x hidden), inference runs *every* expert on
# every token as one batched product and zeroes the unchosen ones through the gate weights:
# 8 experts x 20 beams is 3x cheaper as one baddbmm pair than as a routed loop of 16 small
# addmm calls plus the argsort / bincount / index_add dispatch (see docs/generator.md, speed).
# Above it (large generation batches) the routed dispatch wins and is used.
DENSE_INFERENCE_MAX_MACS = 12_000_000


def all_experts(experts: GroupedExperts, x: torch.Tensor) -> torch.Tensor:
    """Every expert on every token: ``x [A, d] -> [N, A, d]`` (one ``baddbmm`` per matmul)."""
    inputs = x.expand(experts.num_experts, -1, -1)  # [N, A, d], no copy
    hidden = F.gelu(torch.baddbmm(experts.b_in.unsqueeze(1), inputs, experts.w_in))  # [N, A, h]
    return torch.baddbmm(experts.b_out.unsqueeze(1), hidden, experts.w_out)  # [N, A, d]


def routed_experts(experts: GroupedExperts, x: torch.Tensor, routing: Routing) -> torch.Tensor:
    """The routed dispatch of :meth:`MoEFeedForward.forward` without statistics: ``[A, d]``."""
    top_k = routing.expert_index.shape[1]
    flat_expert = routing.expert_index.reshape(-1)  # [A*k]
    order = torch.argsort(flat_expert, stable=True)  # assignments grouped by expert
    token_of_assignment = order // top_k  # [A*k]
    counts = torch.bincount(flat_expert, minlength=experts.num_experts).tolist()
    out_sorted = experts(x.index_select(0, token_of_assignment), counts)  # [A*k, d]
    out_sorted = out_sorted * routing.gates.reshape(-1)[order].unsqueeze(1)
    return torch.zeros_like(x).index_add_(0, token_of_assignment, out_sorted)  # [A, d]


def route_inference(router: TopKRouter, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:meth:`TopKRouter.forward`'s ``(expert_index [A, k], gates [A, k])`` in fewer operators.

    Without a selection bias the top-k *values* of the probabilities are the gates (the same
    floats that ``probs.gather`` returns), so the gather is skipped; otherwise identical.
    """
    probs = torch.softmax(F.linear(x, router.gate.weight), dim=-1)  # [A, N]
    if router.load_balance in ("bias", "both"):
        expert_index = torch.topk(probs + router.expert_bias, router.top_k, dim=-1).indices
        gates = probs.gather(1, expert_index)
    else:
        gates, expert_index = torch.topk(probs, router.top_k, dim=-1)  # [A, k] each
    if router.renormalize:
        gates = gates / gates.sum(dim=-1, keepdim=True)
    return expert_index, gates


def moe_inference(moe: MoEFeedForward, x: torch.Tensor) -> torch.Tensor:
    """Inference output of an MoE layer for tokens ``x [A, d] -> [A, d]``.

    Same routing (:func:`route_inference`, including a load-balancing bias) and the same
    ``Σ_chosen gate · expert(x)`` as :meth:`MoEFeedForward.forward`, but no statistics and no
    bias update — for generation, where nothing reads them. Small batches take the all-experts
    product (:data:`DENSE_INFERENCE_MAX_MACS`), large ones the routed dispatch. Equal to
    ``moe(x)`` up to float rounding (``tests/model/test_moe_inference.py``).
    """
    experts = moe.experts
    tokens, width = x.shape
    macs = tokens * experts.num_experts * width * experts.w_in.shape[2]
    if macs > DENSE_INFERENCE_MAX_MACS:
        return routed_experts(experts, x, moe.router(x))
    expert_index, gates = route_inference(moe.router, x)
    weights = torch.zeros(tokens, experts.num_experts, dtype=x.dtype, device=x.device)
    weights.scatter_(1, expert_index, gates)  # [A, N]
    outputs = all_experts(experts, x)  # [N, A, d]
    # [A, 1, N] @ [A, N, d] -> [A, 1, d]: unchosen experts have weight 0.
    return torch.bmm(weights.unsqueeze(1), outputs.transpose(0, 1)).view(tokens, width)


def ffn_inference(
    ffn: nn.Module,
    x: torch.Tensor,  # [B, T, d]
    token_mask: torch.Tensor | None = None,  # [B, T] real tokens
) -> torch.Tensor:
    """Any decoder FFN at inference: :func:`moe_inference` for an MoE layer, else ``ffn(x)``.

    Masked-out tokens give 0, as in :meth:`MoEFeedForward.forward`.
    """
    if not isinstance(ffn, MoEFeedForward):
        out: torch.Tensor = ffn(x, token_mask)[0]
        return out
    batch, length, width = x.shape
    flat = x.reshape(-1, width)  # [B*T, d]
    if token_mask is None or bool(token_mask.all()):
        return moe_inference(ffn, flat).view(batch, length, width)
    real_rows = token_mask.reshape(-1).nonzero().squeeze(1)  # [A]
    routed = moe_inference(ffn, flat.index_select(0, real_rows))  # [A, d]
    full = x.new_zeros(batch * length, width).index_copy_(0, real_rows, routed)
    return full.view(batch, length, width)
