"""Augmentation entries by import path (TorchIO, an albumentations Compose, a MONAI dict transform): built
and checked at config load, seeded per sample like ours, geometric ones move the label with the image."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import REPO
from weakseg.augment.outside import OutsideTransform
from weakseg.cli import main
from weakseg.config import ConfigError, load_config
from weakseg.keys import Keys

pytest.importorskip("torchio")
pytestmark = pytest.mark.usefixtures("one_thread")

ENTRIES = {
    "torchio": [{"name": "torchio:RandomAffine", "degrees": 20}, {"name": "torchio:RandomBiasField"}],
    "albumentations": [{"name": "tests.ecosystem.pipelines:ALBU_COMPOSE"}],
    "monai": [{"name": "tests.ecosystem.pipelines:MONAI_DICT"}],
}


def _sample():
    label = torch.zeros(32, 32, dtype=torch.long)
    label[8:20, 10:16] = 1
    label[20:28, 18:26] = 2
    image = (label.float() / 2)[None] + 0.01 * torch.arange(32.0)[None, None, :]  # intensity follows label
    return {Keys.IMAGE: image, Keys.LABEL: label, Keys.CASE_ID: "p01"}


@pytest.mark.parametrize("lib", list(ENTRIES))
def test_outside_transform_is_seeded_and_moves_the_label_with_the_image(lib):
    t = OutsideTransform(ENTRIES[lib], spatial_dims=2)
    a, b, c = t(_sample(), 5), t(_sample(), 5), t(_sample(), 6)
    assert torch.equal(a[Keys.IMAGE], b[Keys.IMAGE]) and torch.equal(a[Keys.LABEL], b[Keys.LABEL])
    assert not torch.equal(a[Keys.IMAGE], c[Keys.IMAGE])
    assert a[Keys.IMAGE].shape == (1, 32, 32) and a[Keys.LABEL].dtype == torch.long
    assert set(a[Keys.LABEL].unique().tolist()) <= {0, 1, 2}
    # the label went where the image went: the bright structure (class 2) stays under label 2
    img, lab = a[Keys.IMAGE][0], a[Keys.LABEL]
    if (lab == 2).sum() > 4 and (lab == 0).sum() > 4:
        assert img[lab == 2].mean() > img[lab == 0].mean() + 0.5
    before = torch.random.get_rng_state()
    t(_sample(), 7)
    assert torch.equal(before, torch.random.get_rng_state())  # the caller's generator is left alone


def test_outside_entries_fail_at_config_load():
    with pytest.raises(ConfigError, match='has no attribute "RandomAffin". Did you mean "RandomAffine"'):
        load_config(None, ["augment.transforms=[{name: 'torchio:RandomAffin'}]"])
    with pytest.raises(ConfigError, match="cannot be built from"):
        load_config(None, ["augment.transforms=[{name: 'torchio:RandomAffine', no_such_arg: 1}]"])


def test_training_with_outside_and_own_entries_resumes_exactly(tmp_path):
    tiny = str(REPO / "configs" / "tiny.yaml")
    aug = "augment.transforms=[{name: 'torchio:RandomAffine', degrees: 15}, {name: flip, p: 0.5}]"
    common = ["--set", aug, "--set", "train.save_pictures=false"]
    assert main(["train", tiny, *common, "--set", f"train.run_dir={tmp_path}/a"]) == 0
    assert main(["train", tiny, *common, "--set", f"train.run_dir={tmp_path}/b", "--until", "2"]) == 0
    assert main(["train", "--resume", str(tmp_path / "b")]) == 0
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["state"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["state"]
    assert all(torch.equal(a[k], b[k]) for k in a)
