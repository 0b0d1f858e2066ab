"""The offline pipeline: data, the sample bank, training, evaluation, benchmarks and analyses.

It imports the serving runtime (`sla_engine`), never the reverse.
"""
