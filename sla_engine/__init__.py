"""Models and decoding: the model store, the vLLM engine wrapper and (later) the search strategies.

`server` depends on this package, never the reverse.
"""
