"""fdmer_lite: a teaching implementation of FDMER (Yang et al., ACM MM 2022).

Feature-Disentangled Multimodal Emotion Recognition learns, for each modality m in {t, a, v},
a common representation C_m (shared across modalities) and a private one P_m, and fuses them with
cross-modal attention (CMAF). Each module's docstring names the equations it implements.

The modules, bottom layer first (a module imports only its own layer and those below):

* floor: ``errors`` (the two exceptions), ``config`` (ModelConfig, LossConfig, TrainConfig,
  presets), ``paths`` (where ``runs/`` is), ``collectives`` (all-gather and mean with gradients,
  for DDP), ``metrics`` (MOSI/MOSEI metrics, the scores' plain names, the paper's Tables 1-4);
* ``data``: one module per source format, all producing ``data.base.MultimodalData``;
  ``data.synthetic`` is the known-factor benchmark;
* ``model`` (Eq. 1-3, 8, 12-17) and ``losses`` (Eq. 4-11, 18);
* ``train``: the Trainer (and its progress bars);
* ``analysis`` (representations, probes, scores), ``viz`` (plotly figures, offline HTML), ``readings``
  (the paper's open choices and our extensions);
* ``experiments``: ``runstore`` (sealed run folders), ``runs`` (``find`` a finished run, here
  or bundled with the package; ``obtain``: find it or train it; ``run_grid``: any list of runs,
  in this process, worker processes or Ray; the one thread policy);
* front: ``ablations`` (Table 4), ``sweep`` (the beta/gamma sweep and its explorer widget),
  ``distributed`` (torchrun), ``lessons`` (the notebooks' set-up, the runs bundled for them, the
  demo), ``exercises`` (the exercises' answer checks), ``verdicts`` (what a run's numbers say
  about each of the paper's figures, as one outcome and one sentence), ``cli`` (the ``fdmer-lite`` command and its options' rules).
"""

__version__ = "0.1.0"
