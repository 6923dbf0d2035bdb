from __future__ import annotations

import re

import pytest

from tests.catalogue import bad_input
from weakseg.cli import demo_config
from weakseg.config import ConfigError, config_from_dict, config_to_dict, load_config
from weakseg.registry import Registry


def test_defaults_and_roundtrip():
    cfg = load_config(None)
    assert cfg.data.source == "phantom" and cfg.data.num_classes == 5
    assert config_from_dict(config_to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    "values, needle",
    [
        ({"trian": {}}, 'unknown key "config.trian". Did you mean "train"?'),
        ({"train": {"max_step": 3}}, 'Did you mean "max_steps"?'),
        ({"train": {"max_steps": "ten"}}, "config.train.max_steps: expected an integer, got 'ten'"),
        ({"train": {"max_steps": 2.5}}, "expected an integer"),
        ({"data": {"intensity": {"windw": [1, 2]}}}, 'Did you mean "window"?'),
        ({"data": {"labeled_fraction": 0.0}}, "labeled_fraction must be in (0, 1]"),
        ({"data": {"num_classes": 3}}, "class_names has 5 names but data.num_classes is 3"),
        ({"train": {"progress": "yes"}}, "expected true or false"),
        ({"train": {"log_every": 0}}, "train.log_every must be >= 1"),
        ({"optim": {"betas": [0.9]}}, "optim.betas must be two numbers in [0, 1)"),
        ({"optim": {"poly_power": -1}}, "optim.poly_power must be > 0"),
        ({"optim": {"lr": -0.001}}, "optim.lr must be a number > 0, got -0.001"),
        ({"optim": {"lr": 0}}, "optim.lr must be a number > 0, got 0"),
        ({"optim": {"grad_clip": 0}}, "optim.grad_clip must be > 0 or null"),
        ({"train": {"eval_batch_size": 0}}, "train.eval_batch_size must be >= 1"),
    ],
)
def test_bad_config_values_name_the_key(values, needle):
    what = "config " + ", ".join(f"{k}: {v}" for k, v in values.items())
    with bad_input(what, ConfigError, re.escape(needle)):
        config_from_dict(values)


def test_overrides_are_type_checked(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  max_steps: 5\n")
    cfg = load_config(path, ["train.max_steps=10", "optim.lr=1e-3", "model.params.channels=[4, 8]"])
    assert cfg.train.max_steps == 10 and cfg.optim.lr == 1e-3 and cfg.model.params["channels"] == [4, 8]
    assert isinstance(load_config(path, ["optim.lr=1"]).optim.lr, float)  # ints widen to float
    with pytest.raises(ConfigError, match="train.batch_size: expected an integer, got 'big'"):
        load_config(path, ["train.batch_size=big"])
    with pytest.raises(ConfigError, match="must look like section.key=value"):
        load_config(path, ["train.batch_size"])


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_demo_yaml_mirrors_builtin_demo():
    from tests.conftest import REPO

    assert load_config(REPO / "configs" / "demo.yaml") == demo_config()


def test_shipped_configs_load():
    from adapt.route import load_route
    from tests.conftest import REPO

    for path in sorted((REPO / "configs").glob("*.yaml")):
        if path.name.startswith("route_"):  # a route of stages (weakseg adapt run), each a config
            load_route(path)
        else:
            load_config(path)


def test_relative_input_paths_resolve_against_the_config_file(tmp_path, monkeypatch):
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "a.yaml").write_text(
        "data: {source: folder, root: ../data/ct, unlabeled_dirs: [extra, /abs/u], extra_labeled_roots: [../s]}\n"
        "target: {root: mr}\ntrain:\n  run_dir: runs/{name}\n"
    )
    monkeypatch.chdir(tmp_path)
    cfg = load_config("recipes/a.yaml")
    # relative to the file's folder, still relative (normalised) when the file was named relatively
    assert cfg.data.root == "data/ct"
    assert cfg.data.unlabeled_dirs == ["recipes/extra", "/abs/u"]
    assert cfg.data.extra_labeled_roots == ["s"]
    assert cfg.target.root == "recipes/mr"
    assert cfg.train.run_dir == "runs/{name}"  # outputs stay relative to the working directory
    # the same file named from elsewhere finds the same folders
    monkeypatch.chdir(folder)
    assert load_config("a.yaml").data.root == "../data/ct"
    assert load_config(folder / "a.yaml").data.root == str(tmp_path / "data" / "ct")
    # --set values are relative to the working directory
    assert load_config("a.yaml", ["data.root=here"]).data.root == "here"


def test_recipes_found_in_the_source_tree_or_the_installed_share_folder(tmp_path):
    from weakseg.cli.configs import SOURCE_TREE, configs_dir

    assert configs_dir() == SOURCE_TREE and (SOURCE_TREE / "ct.yaml").is_file()
    shipped = tmp_path / "prefix" / "share" / "weakseg" / "configs"
    shipped.mkdir(parents=True)
    missing = tmp_path / "no_tree"
    assert configs_dir(missing, [str(tmp_path / "other"), str(tmp_path / "prefix")]) == shipped
    assert configs_dir(missing, [str(tmp_path / "other")]) == missing


def test_pyproject_ships_every_recipe():
    import tomllib

    from tests.conftest import REPO

    files = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    assert files["share/weakseg/configs"] == ["configs/*.yaml"]


def test_registry_did_you_mean_and_lazy():
    reg: Registry = Registry("thing")
    reg.register("alpha")(lambda **kw: ("alpha", kw))
    reg.register_lazy("join", "os.path:join")
    assert reg.build("alpha", x=1) == ("alpha", {"x": 1})
    assert reg.get("join")("a", "b") == "a/b"
    assert reg.names() == ["alpha", "join"]
    with pytest.raises(KeyError, match='unknown thing "alpah". Did you mean "alpha"\\?'):
        reg.build("alpah")
    with pytest.raises(KeyError, match="registered twice"):
        reg.register("alpha")(object)
