"""Registry-generated smoke tests: every network, 2D and 3D, forward + backward on tiny inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from weakseg.nets import NETWORKS, axis_divisors, build_network, network_params, pad_to_divisor

# Tiny widths keep the whole file fast on CPU; a network missing here is tested with its defaults.
TINY: dict[str, dict] = {
    "unet": {"channels": (4, 8, 16), "strides": (2, 2), "num_res_units": 1},
    "attention_unet": {"channels": (4, 8, 16), "strides": (2, 2)},
    "unetpp": {"features": (4, 4, 8, 8, 16, 4)},
    "vnet": {},  # fixed widths (16..256)
    "dynunet": {"filters": (4, 8, 16)},
    "segresnet": {"init_filters": 8, "blocks_down": (1, 1, 1), "blocks_up": (1, 1)},
    "encoder_unet": {"encoder": "resnet18", "weights": "none", "decoder_channels": (16, 8, 8, 8, 8)},
    "resnet_generator": {"ngf": 8, "n_blocks": 2},
    "unet_generator": {"ngf": 8, "num_downs": 5},
    "spade_generator": {"ngf": 4, "n_ups": 3, "spade_channels": 8},
}
SIZE_3D = {"vnet": 16}  # smallest cube it accepts (batch 2 keeps batch norm valid at the 1-voxel bottleneck)
DEEP = [n for n in NETWORKS.names() if "deep_supervision" in network_params(n)]
# (name, dims) for every network and each dimensionality it supports (ctor.supported_dims, default 2 and 3)
CASES = [(n, d) for n in NETWORKS.names() for d in getattr(NETWORKS.get(n), "supported_dims", (2, 3))]
OUT = 3


def _input(net: nn.Module, name: str, dims: int) -> torch.Tensor:
    if dims == 3 and name in SIZE_3D:
        return torch.randn(2, 1, *[SIZE_3D[name]] * 3)
    sizes = [max(32 if dims == 2 else 16, 2 * net.size_divisor)] * dims
    return torch.randn(2, 1, *sizes)


def _outputs(out: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
    return out if isinstance(out, list) else [out]


@pytest.mark.parametrize(("name", "dims"), CASES)
def test_forward_backward(name: str, dims: int) -> None:
    torch.manual_seed(0)
    net = build_network(name, dims, 1, OUT, **TINY.get(name, {}))
    x = _input(net, name, dims)
    out = net.train()(x)
    assert isinstance(out, torch.Tensor), "without deep supervision train mode returns one tensor"
    assert out.shape == (x.shape[0], OUT, *x.shape[2:])
    out.float().pow(2).mean().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert any(g is not None for g in grads)
    assert all(torch.isfinite(g).all() for g in grads if g is not None)
    with torch.no_grad():
        out = net.eval()(x)
    assert isinstance(out, torch.Tensor) and out.shape == (x.shape[0], OUT, *x.shape[2:])
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("name", "dims"), CASES)
def test_defaults_build(name: str, dims: int) -> None:
    net = build_network(name, dims, 1, 2)
    assert isinstance(net.size_divisor, int) and net.size_divisor >= 1
    assert len(axis_divisors(net, dims)) == dims
    assert net.deep_supervision is False


@pytest.mark.parametrize("name", DEEP)
def test_deep_supervision(name: str) -> None:
    net = build_network(name, 2, 1, OUT, **TINY.get(name, {}), deep_supervision=True)
    x = _input(net, name, 2)
    outs = net.train()(x)
    assert isinstance(outs, list) and len(outs) >= 2
    assert outs[0].shape == (2, OUT, 32, 32), "the full-size output comes first"
    sizes = [o.shape[-1] for o in outs]
    assert sizes == sorted(sizes, reverse=True), "highest resolution first"
    sum(o.mean() for o in outs).backward()
    with torch.no_grad():
        out = net.eval()(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, OUT, 32, 32)


def test_unetpp_most_refined_head_first() -> None:
    torch.manual_seed(0)
    net = build_network("unetpp", 2, 1, OUT, **TINY["unetpp"], deep_supervision=True).eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        final = net(x)
        heads = net.train()(x)  # instance norm without running stats and no dropout: same maths in both modes
    torch.testing.assert_close(heads[0], final)


def test_dynunet_depth_and_derived_strides() -> None:
    net = build_network("dynunet", 3, 1, 2, depth=4)
    assert net.size_divisor == 8
    assert list(net.filters) == [16, 32, 64, 128]
    net = build_network("dynunet", 3, 1, 2, filters=(4, 8, 16), strides=(1, (1, 2, 2), 2))
    assert (net.size_divisor, net.axis_divisors) == (4, (2, 4, 4))
    with torch.no_grad():
        assert net.eval()(torch.randn(1, 1, 4, 8, 8)).shape == (1, 2, 4, 8, 8)
    with pytest.raises(ValueError, match="disagree"):
        build_network("dynunet", 2, 1, 2, depth=4, filters=(4, 8, 16))
    with pytest.raises(ValueError, match="deep_supr_num"):
        build_network("dynunet", 2, 1, 2, filters=(4, 8, 16), deep_supervision=True, deep_supr_num=2)


def test_unknown_network_suggests() -> None:
    with pytest.raises(KeyError, match='Did you mean "unet"'):
        build_network("unett", 2, 1, 2)


@pytest.mark.parametrize("name", NETWORKS.names())
def test_unknown_param_names_network_and_key(name: str) -> None:
    with pytest.raises(ValueError, match=f'network "{name}" has no parameter "not_a_param"'):
        build_network(name, 2, 1, 2, not_a_param=1)


def test_unknown_param_suggests_and_lists_valid() -> None:
    with pytest.raises(ValueError, match='Did you mean "channels"') as err:
        build_network("unet", 2, 1, 2, chanels=(8, 16))
    assert "num_res_units" in str(err.value)


def test_monai_errors_name_the_network() -> None:
    with pytest.raises(ValueError, match='network "unet": strides needs one entry per downsampling'):
        build_network("unet", 2, 1, 2, channels=(4, 8, 16), strides=(2,))
    with pytest.raises(ValueError, match='network "vnet" needs in_channels that divide 16'):
        build_network("vnet", 3, 3, 2)


def test_params_are_not_mutated() -> None:
    params = {"channels": [4, 8, 16], "strides": [2, 2]}
    build_network("unet", 2, 1, 2, **params)
    assert params == {"channels": [4, 8, 16], "strides": [2, 2]}


def test_input_checks_and_padding() -> None:
    net = build_network("unet", 2, 1, 2, **TINY["unet"]).eval()
    x = torch.randn(1, 1, 30, 33)
    with pytest.raises(ValueError, match=r"multiples of \(4, 4\).*size_divisor=4"):
        net(x)
    with pytest.raises(ValueError, match=r"expects input \(B, 1, S, S\)"):
        net(torch.randn(1, 2, 32, 32))
    padded, crop = pad_to_divisor(x, net.size_divisor)
    assert padded.shape == (1, 1, 32, 36)
    torch.testing.assert_close(padded[crop], x)
    with torch.no_grad():
        assert net(padded)[crop].shape == (1, 2, 30, 33)


def test_constructor_must_set_size_divisor(monkeypatch: pytest.MonkeyPatch) -> None:
    def bare(spatial_dims: int, in_channels: int, out_channels: int) -> nn.Module:
        return nn.Conv2d(in_channels, out_channels, 1)

    monkeypatch.setitem(NETWORKS._items, "bare_test_net", bare)
    with pytest.raises(TypeError, match="size_divisor"):
        build_network("bare_test_net", 2, 1, 2)
