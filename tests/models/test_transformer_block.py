"""The shared masked transformer block: masks keep padding out, fully masked rows are zeros, cross-attention works."""

import torch

from models.layers.transformer import TransformerBlock, key_padding_mask


def test_masked_keys_do_not_change_outputs():
    torch.manual_seed(0)
    block = TransformerBlock(16, 4).eval()
    x = torch.randn(2, 6, 16)
    valid = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    noisy = x.clone()
    noisy[0, 4:] = torch.randn(2, 16) * 100  # padding content must not matter to valid tokens
    a = block(x, mask=key_padding_mask(valid))[0, :4]
    b = block(noisy, mask=key_padding_mask(valid))[0, :4]
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(block(x)[0, :4], block(noisy)[0, :4], atol=1e-3)  # unmasked, padding leaks


def test_fully_masked_rows_give_zero_attention_not_nan():
    block = TransformerBlock(8, 2).eval()
    x = torch.randn(1, 4, 8)
    attn = block.attn(x, None, torch.zeros(1, 1, 4, 4))
    assert torch.isfinite(attn).all()
    assert torch.allclose(attn, block.attn.proj.bias.expand_as(attn))  # zero context, only the output bias


def test_cross_attention_reads_the_context():
    torch.manual_seed(0)
    block = TransformerBlock(16, 2, cross=True, context_dim=8).eval()
    q, ctx = torch.randn(3, 5, 16), torch.randn(3, 7, 8)
    out = block(q, ctx)
    assert out.shape == q.shape
    assert not torch.allclose(out, block(q, ctx + 1.0))
