"""benchmarks.latent_dynamics_env_models: the test log-likelihood columns read from an
experiment-1 summary, by hand (both RAR rows share RAR's, the jumpy model has none), and a
missing summary refused by name."""
import json

import pytest

from benchmarks import latent_dynamics_env_models as bench


def test_likelihood_columns_from_an_experiment_summary(tmp_path):
  summary = {"minipacman/RAR/ll_per_frame_T1": -3.6, "minipacman/RAR/ll_per_frame_T10": -3.63,
             "minipacman/sSSM/ll_per_frame_T1": -13.9, "minipacman/sSSM/ll_per_frame_T10": -16.9,
             "sokoban/sSSM/ll_per_frame_T10": -40.4}
  (tmp_path / "summary.json").write_text(json.dumps(summary))
  loaded = bench.load_likelihoods(str(tmp_path))
  assert bench.likelihood_columns(loaded, "RAR, XLA conv") == {
      "minipacman_ll_T1": -3.6, "minipacman_ll_T10": -3.63, "sokoban_ll_T1": None,
      "sokoban_ll_T10": None}
  assert bench.likelihood_columns(loaded, "sSSM")["sokoban_ll_T10"] == -40.4
  assert set(bench.likelihood_columns(loaded, "jumpy sSSM (k=4)").values()) == {None}
  assert set(bench.likelihood_columns(None, "sSSM").values()) == {None}
  assert bench.load_likelihoods(None) is None
  with pytest.raises(ValueError, match="--likelihoods: no experiment-1 summary at"):
    bench.load_likelihoods(str(tmp_path / "missing"))
