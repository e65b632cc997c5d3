"""Not JAX: what the tests' subprocesses import for `jax` (tests/conftest.py puts this
folder first on their PYTHONPATH). They run on TensorFlow, whose import tries `from jax
import jit` (TensorFlow Lite's utilities) and, with JAX installed, spends about half a
second of CPU importing it in every process; a search's own install (requirements.txt)
has no JAX. The backend tests that run on JAX set their own PYTHONPATH."""

raise ImportError("jax is kept out of the tests' TensorFlow subprocesses (tests/conftest.py)")
