"""A goal-driven model research loop: plan, assemble, validate in a sandbox, evaluate, record.

``sweeplab agent --goal "Design a small CNN for Fashion-MNIST targeting >85% accuracy"``
(see ``docs/agent.md``). Modules: :mod:`goal` (parse the goal), :mod:`space` (model and
training configs, the search space), :mod:`planner` (Optuna TPE offline, or an LLM),
:mod:`llm` (OpenAI-compatible chat client), :mod:`assembler` (config -> PyTorch source),
:mod:`sandbox` and :mod:`sandbox_child` (validation in a contained subprocess, which
also measures the summary: parameters, per-layer shapes, FLOPs), :mod:`datasets` (real
offline data), :mod:`evaluate`, :mod:`metrics` and :mod:`curves` (training over seeds,
test metrics with intervals, learning dynamics, plots), :mod:`records` and
:mod:`registry` (the run directory), :mod:`loop` (the iterations), :mod:`report`
(``sweeplab analyze`` on agent runs).
"""
