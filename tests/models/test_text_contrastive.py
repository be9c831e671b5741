"""The bag-of-words text encoder and symmetric InfoNCE shared by the multimodal papers."""

import math

import pytest
import torch

from models.text_bow import BagOfWordsArgs, BagOfWordsEncoder, WordTokenizer
from trainers.contrastive import LogitScale, symmetric_info_nce


def test_tokenizer_pads_drops_unknown_and_is_order_free_in_the_encoder():
    tok = WordTokenizer(["red", "circle", "square"])
    ids = tok.encode(["A red circle!", "zebra", "circle red"], max_words=4)
    assert ids[1].tolist() == [0, 0, 0, 0]
    enc = BagOfWordsEncoder(BagOfWordsArgs(vocab_size=len(tok), dim=8, embed_dim=4)).eval()
    out = enc(ids)
    assert torch.allclose(out[0], out[2])          # a bag: word order does not matter
    assert torch.isfinite(out[1]).all()


def test_info_nce_is_low_for_matched_pairs_and_symmetric():
    torch.manual_seed(0)
    a = torch.randn(8, 16)
    matched = symmetric_info_nce(a, a, 50.0)
    shuffled = symmetric_info_nce(a, a[torch.randperm(8)], 50.0)
    assert matched < 0.05 < shuffled
    b = torch.randn(8, 16)
    assert torch.isclose(symmetric_info_nce(a, b, 10.0), symmetric_info_nce(b, a, 10.0))
    with pytest.raises(ValueError, match="differ"):
        symmetric_info_nce(a, b[:4], 1.0)


def test_logit_scale_starts_at_one_over_007_and_is_clipped():
    s = LogitScale()
    with torch.no_grad():
        assert math.isclose(s().item(), 1 / 0.07, rel_tol=1e-5)
        s.logit_scale.fill_(10.0)
        assert s().item() == 100.0
