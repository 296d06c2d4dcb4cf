"""Smoke test of the launch.stochastic_graphs.bernoulli launcher (tiny preset)."""
import math

from launch import app
from launch.stochastic_graphs import bernoulli as sg_bernoulli
from launch.stochastic_graphs.configs import bernoulli as config_module


def test_sg_bernoulli_smoke(tmp_path):
  config = config_module.get_config("smoke")
  summary = app.execute(sg_bernoulli.experiment, config, tmp_path, progress=False)
  for t in config.targets:
    exact = summary[f"exact_grad_t{t}"]
    for name in config.estimators:
      assert math.isfinite(summary[f"var_t{t}/{name}"])
      theta = summary[f"final_theta_t{t}/{name}"]
      assert math.isclose(summary[f"final_p_t{t}/{name}"], 1 / (1 + math.exp(-theta)),
                          rel_tol=1e-6)
      assert (name in summary[f"correct_side_t{t}"].split(",")) == (theta < 0)
      assert math.isfinite(summary[f"train_log10_var_t{t}/{name}"])
    # Unbiased estimators: mean within 5 standard errors of (1 - 2t)/4 at p = 1/2.
    for name in set(config.estimators) & {"reinforce", "loo", "arm", "disarm", "rebar", "relax"}:
      se = summary[f"stderr_t{t}/{name}"]
      assert abs(summary[f"mean_t{t}/{name}"] - exact) <= 5 * se + 1e-6, name
    # DisARM on one Bernoulli is exact; plain REINFORCE is not.
    assert summary[f"var_t{t}/disarm"] < 1e-10 < summary[f"var_t{t}/reinforce"]
    # RELAX's control, tuned on the variance objective, beats REINFORCE (untuned it is worse:
    # 0.026 against 0.016 at p = 1/2).
    assert summary[f"var_t{t}/relax"] < 0.2 * summary[f"var_t{t}/reinforce"]
  assert (tmp_path / "figures" / "bernoulli.png").exists()
