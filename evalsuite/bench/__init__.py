"""Benchmark suites (TOML in benchmarks/), the SQLite results store, the regression gate and history.

``evalsuite bench run SUITE --store results.db`` appends a run; ``bench check`` compares the newest run
with a baseline (the previous run, a tagged run or a committed baseline JSON) and exits 1 on regression.
"""
