"""Speed and scale measurements of cementleak, printed as ratios against baselines measured in
the same run (``make bench`` runs :mod:`benchmarks.run` and writes ``benchmarks/RESULTS.md``).

Benchmarks are not tests: CI runs only the small smoke version (``tests/test_bench_smoke.py``),
which checks that the harness produces its table, never a bare time.
"""
