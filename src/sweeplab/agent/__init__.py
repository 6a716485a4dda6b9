"""A goal-driven model research loop: plan, assemble, train in a sandbox, score, record.

``sweeplab agent --goal "Design a small CNN for Fashion-MNIST targeting >85% accuracy"``
(see ``docs/agent.md``). Modules: :mod:`goal` (parse the goal), :mod:`space` (model and
training configs, the search space), :mod:`planner` (Optuna TPE offline, or an LLM),
:mod:`llm` (OpenAI-compatible chat client), :mod:`assembler` (config -> PyTorch source),
:mod:`gate` (the static allow-list), :mod:`candidate` (one candidate, trained and
predicted in the sandbox, scored here), :mod:`sandbox`, :mod:`sandbox_child`,
:mod:`isolation` and :mod:`seccomp` (the contained child process: bubblewrap, seccomp,
rlimits, audit hook), :mod:`training` (the training loop that runs in the sandbox),
:mod:`arrays` (weights and predictions as plain arrays), :mod:`datasets` (real offline
data), :mod:`evaluate`, :mod:`metrics` and :mod:`curves` (the agent's own scoring over
seeds: metrics with intervals, learning dynamics, plots), :mod:`records` and
:mod:`registry` (the run directory), :mod:`loop` (the iterations), :mod:`report`
(``sweeplab analyze`` on agent runs).
"""
