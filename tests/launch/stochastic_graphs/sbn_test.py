"""Smoke test of launch.stochastic_graphs.sbn (the model and every estimator are tested in
tests/stochastic_graphs/sbn_test.py)."""
import math

from launch import app
from launch.stochastic_graphs import sbn as sg_sbn
from launch.stochastic_graphs.configs import sbn as config_module


def test_sg_sbn_smoke(tmp_path):
  config = config_module.get_config("smoke")
  summary = app.execute(sg_sbn.experiment, config, tmp_path, progress=False)
  for layers in config.layers:
    for est in config.estimators:
      elbo = summary[f"final_train_elbo/{layers}/{est}"]
      # 64 binary pixels: -ELBO is between 0 and the cost of a uniform guess plus the KL.
      assert -64 * math.log(2) - 20 < elbo < 0, (layers, est, elbo)
      assert math.isfinite(summary[f"mean_log10_var/{layers}/{est}"])
      assert math.isfinite(summary[f"test_elbo/{layers}/{est}"])
  assert (tmp_path / "figures" / "sbn_elbo_variance.png").exists()
