"""Anchor-function and inverse-sequence tasks (Chen, Lin, Wang, Xu, NeurIPS 2025, App. C)."""
