"""A goal-driven model research loop: plan, assemble, validate in a sandbox, evaluate, record.

``sweeplab agent --goal "Design a small CNN for Fashion-MNIST targeting >85% accuracy"``
(see ``docs/agent.md``). Modules: :mod:`goal` (parse the goal), :mod:`space` (model and
training configs, the search space), :mod:`planner` (Optuna TPE offline, or an LLM),
:mod:`llm` (OpenAI-compatible chat client), :mod:`assembler` (config -> PyTorch source),
:mod:`sandbox` (validation in a contained subprocess), :mod:`summary` and
:mod:`evaluate` (parameters, shapes, FLOPs; metrics over seeds), :mod:`registry` (the
run directory), :mod:`loop` (the iterations).
"""
