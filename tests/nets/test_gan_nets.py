"""GAN networks: generator shapes and ranges, the 70x70 PatchGAN receptive field, init, clear errors."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils import parametrize

from weakseg.nets import DISCRIMINATORS, build_discriminator, build_network
from weakseg.nets.gan import spectral_normalize

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny batches: one thread is fastest


GENERATORS = [  # name, params, size_divisor
    ("resnet_generator", {"ngf": 8, "n_blocks": 6}, 4),
    ("resnet_generator", {"ngf": 8, "n_blocks": 9}, 4),
    ("unet_generator", {"ngf": 8, "num_downs": 5}, 32),
    ("spade_generator", {"ngf": 4, "n_ups": 4, "spade_channels": 8}, 16),
]


@pytest.mark.parametrize(("name", "params", "divisor"), GENERATORS)
def test_generator_shape_and_tanh_range(name: str, params: dict, divisor: int) -> None:
    torch.manual_seed(0)
    net = build_network(name, 2, 2, 3, **params)
    assert net.size_divisor == divisor
    x = 50.0 * torch.randn(2, 2, 32, 32)  # far outside [-1, 1]: the output is still bounded
    y = net(x)
    assert y.shape == (2, 3, 32, 32)
    assert y.abs().max() <= 1.0
    with pytest.raises(ValueError, match="multiples of"):
        net(torch.zeros(1, 2, divisor + 2, divisor))


def test_spade_generator_follows_the_label_map_at_any_multiple_size() -> None:
    torch.manual_seed(0)
    net = build_network("spade_generator", 2, 3, 1, ngf=4, n_ups=3, spade_channels=8).eval()
    for h, w in ((16, 16), (32, 48)):
        label = torch.zeros(1, 3, h, w)
        label[:, 0] = 1
        other = label.clone()
        other[:, :, : h // 2] = torch.tensor([0.0, 0.0, 1.0])[:, None, None]  # top half another class
        a, b = net(label), net(other)
        assert a.shape == (1, 1, h, w)
        assert not torch.allclose(a, b)  # the image changes with the map (SPADE's modulation)
    with pytest.raises(ValueError, match="too small for 3 upsamplings: sides must be at least 16"):
        net(torch.zeros(1, 3, 8, 8))


def test_linear_output_is_unbounded() -> None:
    torch.manual_seed(0)
    net = build_network("resnet_generator", 2, 1, 1, ngf=8, n_blocks=1, output="linear", init_gain=1.0)
    assert net(100.0 * torch.randn(1, 1, 16, 16)).abs().max() > 1.0


def test_resnet_9_matches_cyclegan_size() -> None:
    """ngf 64, 9 blocks, RGB: 11,378,179 parameters, as pytorch-CycleGAN's resnet_9blocks."""
    net = build_network("resnet_generator", 2, 3, 3)
    assert sum(p.numel() for p in net.parameters()) == 11_378_179


def test_weights_initialised_by_init_weights() -> None:
    torch.manual_seed(0)
    net = build_network("resnet_generator", 2, 1, 1, ngf=16, n_blocks=2)
    conv = net.model[1]
    assert conv.weight.std().item() == pytest.approx(0.02, rel=0.15)
    assert torch.count_nonzero(conv.bias) == 0


@pytest.mark.parametrize(("size", "out"), [(32, 2), (64, 6), (256, 30)])
def test_patchgan_output_size(size: int, out: int) -> None:
    d = build_discriminator("patchgan", 1, ndf=4)
    assert d(torch.zeros(1, 1, size, size)).shape == (1, 1, out, out)


def test_patchgan_sees_70x70_patches() -> None:
    """The gradient of one output logit is non-zero on exactly a 70x70 input window (batch norm in eval
    mode keeps the net local; instance norm would couple every pixel through its statistics)."""
    torch.manual_seed(0)
    d = build_discriminator("patchgan", 1, ndf=4, norm="batch").eval()
    x = torch.randn(1, 1, 128, 128, requires_grad=True)
    d(x)[0, 0, 7, 7].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    cols = torch.nonzero(x.grad[0, 0].abs().sum(0)).flatten()
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


def test_bad_inputs_and_names() -> None:
    d = build_discriminator("patchgan", 1, ndf=4)
    with pytest.raises(ValueError, match="H, W >= 24"):
        d(torch.zeros(1, 1, 16, 16))
    with pytest.raises(KeyError, match='Did you mean "patchgan"'):
        build_discriminator("patchgn", 1)
    with pytest.raises(ValueError, match='no parameter "nfd"'):
        build_discriminator("patchgan", 1, nfd=8)
    with pytest.raises(ValueError, match="2D only"):
        build_network("resnet_generator", 3, 1, 1)
    with pytest.raises(ValueError, match="norm must be one of instance, batch"):
        build_network("unet_generator", 2, 1, 1, norm="group")
    with pytest.raises(ValueError, match="num_downs >= 5"):
        build_network("unet_generator", 2, 1, 1, num_downs=3)
    assert DISCRIMINATORS.names() == ["evaluation", "fcn", "patchgan"]


def test_fcn_and_evaluation_discriminators() -> None:
    fcn = build_discriminator("fcn", 5, ndf=4)
    assert fcn(torch.zeros(2, 5, 64, 48)).shape == (2, 1, 64, 48)  # one logit per pixel (Hung et al.)
    with pytest.raises(ValueError, match="H, W >= 32"):
        fcn(torch.zeros(1, 5, 16, 16))
    critic = build_discriminator("evaluation", 6, ndf=4, n_layers=3)
    assert critic(torch.zeros(2, 6, 40, 56)).shape == (2, 1)  # one score per (image, segmentation) pair
    with pytest.raises(ValueError, match="H, W >= 8"):
        critic(torch.zeros(1, 6, 4, 4))


@pytest.mark.parametrize("name", ["patchgan", "evaluation"])
def test_spectral_normalize_bounds_every_layer(name: str) -> None:
    torch.manual_seed(0)
    disc = spectral_normalize(build_discriminator(name, 3, ndf=8)).train()
    x = torch.randn(2, 3, 64, 64)
    for _ in range(20):  # power iterations run in training-mode forward passes
        disc(x)
    layers = [m for m in disc.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    for m in layers:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.05)
