"""Implicit bias of mirror descent in deep linear networks (binary classification).

Modules: ``potentials`` (mirror maps), ``model`` (the network and losses), ``optim``
(the MirrorDescent optimizer), ``train`` (the loop), ``baselines`` (max-margin and
logistic-regression directions), ``metrics`` (angles, margins, alignment, balance),
``plots`` (per-run figures) and ``study`` (the registered run function).
"""
