"""The serving runtime: the model store (`store/`), the vLLM engine wrapper (`engine/`), the reward channel
inside vLLM's forward pass (`reward/`) and the search strategies (`search/`).

`server` depends on this package, never the reverse.
"""
