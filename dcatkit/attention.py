"""The self-attention module of each classifier (paper Section III-A, IV-A)."""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn


class AttentionOutput(NamedTuple):
    out: torch.Tensor  # (B, T, d_out)
    q: torch.Tensor    # (B, T, d_out)
    k: torch.Tensor    # (B, T, d_out)
    v: torch.Tensor    # (B, T, d_out)


class SelfAttention(nn.Module):
    """Single-head self-attention that also returns its Q, K and V.

    Eq. (1): Q = E W_Q, K = E W_K, V = E W_V with W_* in R^{d_model x d_out}
    (d_k = d_v = d_out; 512 in the paper). Eq. (2):
    out = softmax(Q K^T / sqrt(d_out)) V.

    The paper does not say whether the projections have a bias; we use none,
    so K and V are exactly linear in the embeddings as Theorem 4.1 assumes.
    """

    def __init__(self, d_model: int, d_out: int = 512):
        super().__init__()
        if d_model < 1 or d_out < 1:
            raise ValueError(f"d_model and d_out must be positive, got {d_model} and {d_out}")
        self.d_model, self.d_out = d_model, d_out
        self.w_q = nn.Linear(d_model, d_out, bias=False)
        self.w_k = nn.Linear(d_model, d_out, bias=False)
        self.w_v = nn.Linear(d_model, d_out, bias=False)

    def forward(self, e: torch.Tensor) -> AttentionOutput:
        """e: (B, T, d_model) -> AttentionOutput of (B, T, d_out) tensors."""
        if e.ndim != 3 or e.shape[-1] != self.d_model:
            raise ValueError(f"SelfAttention expects (B, T, {self.d_model}), got {tuple(e.shape)}")
        q, k, v = self.w_q(e), self.w_k(e), self.w_v(e)              # (B, T, d_out) each
        scores = q @ k.transpose(1, 2) / math.sqrt(self.d_out)       # (B, T, T)
        out = torch.softmax(scores, dim=-1) @ v                      # (B, T, d_out)
        return AttentionOutput(out, q, k, v)
