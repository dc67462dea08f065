"""Side-by-side benchmarks of c2 against its peers (PyTorch CPU, ONNX Runtime, NumPy).

Benchmarks are not tests: ``python -m benchmarks.run`` prints a table with
c2's time, a peer's time measured in the same run, and their ratio.
"""
