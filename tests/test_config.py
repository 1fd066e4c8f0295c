"""Config: schemes, overrides, unknown keys with suggestions."""

import pytest

from adversarial_seg.config import ConfigError, config_from_mapping, load_config


@pytest.mark.parametrize("scheme,weights", [("ce", (1.0, 0.0)), ("adversarial", (0.0, 1.0)), ("hybrid", (0.5, 1.0))])
def test_scheme_weights(scheme, weights):
    assert config_from_mapping({"scheme": scheme}).loss_weights() == weights


def test_explicit_weights_override_the_scheme():
    cfg = config_from_mapping({"scheme": "hybrid", "loss": {"w_sup": 1.0}})
    assert cfg.loss_weights() == (1.0, 1.0)


def test_unknown_key_names_the_closest_valid_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epoch: 3\nmodle: {}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "unknown key 'train.epoch'; did you mean 'train.epochs'?" in message
    assert "unknown key 'modle'; did you mean 'model'?" in message


def test_overrides_are_validated(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("scheme: ce\n")
    cfg = load_config(path, ["train.epochs=7", "model.discriminator.input_scale=0.25", "scheme=hybrid"])
    assert (cfg.train.epochs, cfg.model.discriminator.input_scale, cfg.scheme) == (7, 0.25, "hybrid")
    with pytest.raises(ConfigError, match="train.epochs"):
        load_config(path, ["train.epochs=0"])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(path, ["train.epochs"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("train: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_regions_must_use_declared_labels():
    with pytest.raises(ConfigError, match="data.regions.tumour"):
        config_from_mapping({"data": {"labels": {"background": 0, "gland": 1}, "regions": {"tumour": [2]}}})


def test_network_kwargs_pass_through():
    cfg = config_from_mapping({"model": {"segmentor": {"name": "BasicUNet", "features": [8, 8, 16, 32, 64, 8]}}})
    assert cfg.model.segmentor.kwargs() == {"features": [8, 8, 16, 32, 64, 8]}


def test_errors_blame_the_set_that_gave_the_value_not_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {epoch: 2}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, ["train.batch_size=many", "cv.fold=3"])
    lines = str(caught.value).splitlines()
    assert f"{path}: unknown key 'train.epoch'; did you mean 'train.epochs'?" in lines
    assert "--set 'cv.fold=3': unknown key 'cv.fold'; did you mean 'cv.folds'?" in lines
    assert any(line.startswith("--set 'train.batch_size=many': key 'train.batch_size'") for line in lines)


def test_digest_ignores_keys_at_their_default_and_sees_every_change():
    plain = config_from_mapping({"train": {"epochs": 3}})
    assert config_from_mapping({"train": {"epochs": 3, "empty_slices": 1.0}}).digest() == plain.digest()
    assert config_from_mapping({"train": {"epochs": 3}, "loss": {"batch_dice": False}}).digest() == plain.digest()
    assert config_from_mapping({"train": {"epochs": 4}}).digest() != plain.digest()
    assert config_from_mapping({"train": {"epochs": 3, "empty_slices": 0.5}}).digest() != plain.digest()
