"""Simulated SCF / SCDF data: unsupervised DeepSpike vs OASIS AR1 / AR2 (Speiser 2017, Sec. 3.1).

For each model, `num_cells` traces are simulated with per-cell parameters drawn around typical
GCaMP6 values; DeepSpike (factorised CNN + the same generative model, unsupervised VIMCO) is fitted
to all of them and scored by the Pearson correlation of the expected spike count with the true
spikes per 60 Hz frame (mean over cells), next to OASIS on the same traces and, for SCF, the
exact model's posterior by MCMC with the true parameters (`calcium.mcmc`) on the first
`mcmc_cells` cells (with DeepSpike's score on the same cells beside it).
"""
import jax
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from calcium import evaluation, mcmc, models, oasis_baseline, train  # noqa: E402
from launch import app  # noqa: E402


def simulate_cells(name: str, config, rng: np.random.Generator):
  """Per-cell parameters around typical values; returns the model, raw params (stacked), spikes
  (N, T, 1) and traces (N, T, 1)."""
  model = models.make_model(name, frame_rate=60.0)
  spikes, traces, raws = [], [], []
  for i in range(config.num_cells):
    tau = rng.uniform(0.4, 1.0)
    common = dict(sigma=config.noise_std, rate=config.firing_rate, beta=rng.normal(0, 0.5))
    if name == "scf":
      raw = model.init(tau=tau, alpha=config.spike_snr * config.noise_std, **common)
    else:  # SCDF: one spike binds ~27% of the dye within a frame at these rates; scale to the SNR.
      raw = model.init(tau=tau, k_on=20.0, k_off=5.0, hill=2.0,
                       alpha=config.spike_snr * config.noise_std / 0.27, **common)
    s, f = jax.jit(model.simulate, static_argnums=2)(raw, jax.random.key(config.seed * 1000 + i),
                                                      config.num_frames)
    spikes.append(np.asarray(s))
    traces.append(np.asarray(f))
    raws.append(raw)
  return model, jax.tree.map(lambda *x: np.stack(x), *raws), np.stack(spikes), np.stack(traces)


def mean_corr(pred, spikes):
  return float(np.nanmean([evaluation.pearson(p, s) for p, s in zip(pred, spikes)]))


def experiment(config, run: app.Run) -> dict:
  rng = np.random.default_rng(config.seed)
  summary, curves = {}, {}
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
  for name in config.models:
    model, raws, spikes, traces = simulate_cells(name, config, rng)
    ds = train.make_dataset(list(traces))
    tcfg = train.default_config()
    tcfg.update(config.train.to_dict())
    tcfg.model = name
    trainer = train.make_trainer(tcfg, ds)
    state = run.train_loop(lambda: trainer.init(jax.random.key(config.seed)), trainer.chunk,
                           config.num_chunks, name=name)
    infer = jax.jit(lambda p, f: trainer.recognition.probabilities(p, f))
    pred = [np.asarray(infer(state.recognition_params, f))[:, 0] for f in ds.fluorescence]
    true = spikes[:, :, 0]
    summary[f"{name}_deepspike_corr"] = mean_corr(pred, true)
    summary[f"{name}_deepspike_count_ratio"] = float(np.sum(pred) / max(true.sum(), 1))
    for order in (1, 2):
      est = [oasis_baseline.oasis_deconvolve(t[:, 0], order) for t in traces]
      summary[f"{name}_oasis_ar{order}_corr"] = mean_corr(est, true)
    if name == "scf" and config.mcmc_cells:
      n = min(config.mcmc_cells, config.num_cells)
      gibbs = jax.jit(jax.vmap(lambda r, f, k: mcmc.scf_gibbs_marginals(
          model, r, f, k, config.mcmc_sweeps, config.mcmc_sweeps // 5, 200)))
      post = gibbs(jax.tree.map(lambda x: x[:n], raws), traces[:n],
                   jax.random.split(jax.random.key(config.seed), n))
      summary["scf_mcmc_true_params_corr"] = mean_corr(np.asarray(post), true[:n])
      summary["scf_deepspike_corr_mcmc_cells"] = mean_corr(pred[:n], true[:n])
    hist = run.history(name)
    curves[name] = np.asarray(hist["bound_per_frame"])
    summary[f"{name}_final_bound_per_frame"] = float(curves[name][-10:].mean())
  for name, curve in curves.items():
    axes[0].plot(curve, label=name)
  # The first steps' bound is hundreds of nats lower; zoom on the rest of the run.
  tails = np.concatenate([c[len(c) // 20:] for c in curves.values()])
  axes[0].set_ylim(np.percentile(tails, 1) - 0.5, tails.max() + 0.5)
  axes[0].set(xlabel="step", ylabel="VIMCO bound per frame", title="learning curves")
  axes[0].legend()
  labels = ["deepspike", "oasis_ar1", "oasis_ar2"]
  width = 0.8 / len(config.models)
  for j, name in enumerate(config.models):
    axes[1].bar(np.arange(3) + j * width, [summary[f"{name}_{k}_corr"] for k in labels], width,
                label=name)
  axes[1].set_xticks(np.arange(3) + 0.4 - width / 2, labels)
  axes[1].set(ylabel="correlation (60 Hz bins)", title="spike inference on simulated data")
  axes[1].legend()
  run.save_figure("simulated_correlation", fig)
  return summary


if __name__ == "__main__":
  app.run(experiment)
