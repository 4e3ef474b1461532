"""Audit 6 (attention.py): SelfAttention refuses inputs that are not (B, T, d_model)."""
import re

import pytest
import torch

from dcatkit.attention import SelfAttention


@pytest.mark.parametrize("shape", [(5, 4), (2, 5, 5, 4)])
def test_self_attention_refuses_inputs_that_are_not_batch_time_features(shape):
    """SelfAttention takes (B, T, d_model): a 2-D input (a batch without its time axis) and a 4-D
    one (whose axes 1 and 2 are equal, so the matmul would silently run over the wrong axes) are
    each a ValueError naming the expected and the given shape."""
    att = SelfAttention(4, 3)
    with pytest.raises(ValueError, match=r"expects \(B, T, 4\), got " + re.escape(str(shape))):
        att(torch.zeros(shape))
