"""The procedural captioned scenes shared by CatLIP and CLIP with model-zoo experts."""

import numpy as np
import pytest

from trainers.scenes import COLOURS, GLYPH_CLASS, SHAPES, digit_canvases, make_scenes


def test_scenes_are_deterministic_and_consistent_with_their_labels():
    a, b = make_scenes(64, seed=3), make_scenes(64, seed=3)
    assert np.array_equal(a.images, b.images) and a.captions == b.captions
    assert not np.array_equal(a.images, make_scenes(64, seed=4).images)
    assert a.images.shape == (64, 3, 32, 32) and a.images.min() >= 0 and a.images.max() <= 1
    for i in range(64):
        front = a.objects[i][0]
        assert (a.shape[i], a.colour[i]) == (front[0], front[1])
        assert [o[2] for o in a.objects[i]] == sorted(o[2] for o in a.objects[i])  # nearest first
        visible = a.masks[i] > 0
        assert np.all(a.depth[i][visible] < 1.0) and np.all(a.depth[i][~visible] == 1.0)
        assert (a.digit[i] >= 0) == bool((a.masks[i] == GLYPH_CLASS).any())


def named(obj):
    words = f"{COLOURS[obj[1]]} {SHAPES[obj[0]]}"
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"


def test_catlip_captions_are_noisy_web_text_and_depth_captions_follow_depth_order():
    s = make_scenes(400, seed=0, style="catlip")
    no_noun = [c for c in s.captions if not any(w in c for w in SHAPES)]
    assert 0.03 < len(no_noun) / len(s) < 0.2
    d = make_scenes(200, seed=0, style="depth", digit_prob=0.0, caption_noise=0.0)
    for caption, objs in zip(d.captions, d.objects):
        assert caption.startswith(named(objs[0]))
        if len(objs) > 1:
            assert f"in front of {named(objs[1])}" in caption
    assert (d.digit == -1).all()


def test_texture_backgrounds_and_digit_canvases():
    t = make_scenes(8, seed=1, texture=True)
    assert t.images[:, :, t.masks[0] == 0].std() > 0.02
    images, labels = digit_canvases("test")
    assert images.shape[1:] == (3, 32, 32) and sorted(set(labels.tolist())) == list(range(10))
    with pytest.raises(ValueError, match="style"):
        make_scenes(4, seed=0, style="web")
