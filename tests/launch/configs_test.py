"""Every registered experiment's config builds at its `smoke` and `default` presets, refuses an
unknown preset by name, and names a launcher with an `experiment(config, run)` function: the
fast counterpart of the launcher smoke runs that are marked `slow`."""
import inspect

import ml_collections
import pytest

from launch import reproduce

NAMES = reproduce.registered_experiments()


def test_the_registry_holds_every_package():
  packages = {n.split(".")[0] for n in NAMES}
  assert packages >= {"stochastic_graphs", "latent_dynamics", "manifold", "calcium", "agents"}
  assert len(NAMES) >= 30, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_presets_build_and_a_bad_preset_is_named(name):
  module = reproduce.config_module(name)
  for preset in ("smoke", "default"):
    config = module.get_config(preset)
    assert isinstance(config, ml_collections.ConfigDict), (name, preset)
  assert module.get_config("smoke").to_dict() != module.get_config("default").to_dict(), name
  with pytest.raises(ValueError, match="preset"):
    module.get_config("no-such-preset")
  report = module.REPORT
  assert isinstance(report["title"], str) and report["title"], name
  fn = reproduce.experiment_fn(name)
  assert list(inspect.signature(fn).parameters)[:2] == ["config", "run"], name
