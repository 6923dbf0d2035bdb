"""Guided feature modulation: clicks move the frozen segmenter's output their way, weights never change, no
click or a reset gives the network's own answer, unsuitable networks are refused."""

from __future__ import annotations

import pytest
import torch

from weakseg.interactive.clicks import Click
from weakseg.interactive.guided import GuidedModulation, modulation_sites
from weakseg.nets import build_network

pytestmark = pytest.mark.usefixtures("one_thread")

NETS = {
    "unet": ({"channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 0}, 32),
    "encoder_unet": ({"encoder": "resnet18", "weights": "none", "decoder_channels": [16, 8, 8, 8, 8]}, 64),
}
CLICKS = [Click(10, 10, True), Click(12, 20, True), Click(20, 8, False)]


def _net(name):
    torch.manual_seed(0)
    kw, size = NETS[name]
    return build_network(name, spatial_dims=2, in_channels=1, out_channels=3, **kw).eval(), torch.rand(
        1, 1, size, size
    )


@pytest.mark.parametrize("levels", ["all", "bottleneck"])
@pytest.mark.parametrize("name", list(NETS))
def test_clicks_pull_the_output_and_weights_stay(name, levels):
    net, x = _net(name)
    weights = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        before = net(x).softmax(1)[0, 1]
    guide = GuidedModulation(net, levels=levels)
    after = guide.fit(x, CLICKS, target=1, steps=30).softmax(1)[0, 1]
    fg = (after[9:12, 9:12].mean() + after[11:14, 19:22].mean()) - (
        before[9:12, 9:12].mean() + before[11:14, 19:22].mean()
    )
    assert fg > 0.01  # the foreground clicks' class gained where they were made (0 if nothing is modulated)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in weights.items())
    assert all(p.requires_grad for p in net.parameters())
    guide.reset()
    with torch.no_grad():
        assert torch.allclose(net(x).softmax(1)[0, 1], before)
    assert torch.allclose(guide.fit(x, [], target=1).softmax(1)[0, 1], before)  # no click: its own answer
    guide.remove()


def test_unsuitable_networks_and_levels():
    with pytest.raises(ValueError, match="needs a segmenter with an `encoder`"):
        modulation_sites(torch.nn.Conv2d(1, 2, 1))
    net, _ = _net("unet")
    with pytest.raises(ValueError, match='levels must be "all" or "bottleneck"'):
        GuidedModulation(net, levels="middle")


def test_guided_runner_segments_the_target_class_and_keeps_the_clicks():
    import numpy as np

    from weakseg.interactive.evaluate import click_curves, guided_runner

    net, x = _net("unet")
    run = guided_runner(net, torch.device("cpu"), steps=10)
    image, prior = x[0].numpy(), np.zeros((32, 32), np.float32)
    mask = run(image, prior, CLICKS, 2)
    assert mask.shape == (32, 32) and mask.dtype == bool
    assert mask[10, 10] and mask[12, 20] and not mask[20, 8]  # click discs keep their labels
    probs = guided_runner(net, torch.device("cpu"), steps=10, probabilities=True)(image, prior, CLICKS, 2)
    assert probs.dtype == np.float32 and 0 <= probs.min() and probs.max() <= 1
    seen = []
    truth = np.zeros((32, 32), bool)
    truth[8:14, 8:14] = True
    click_curves([(image, prior, truth, 3)], {"spy": lambda im, p, c, t: seen.append(t) or truth}, 2)
    assert seen == [3]  # the episode's class reaches the method (one click: then the mask is right)
