"""Test fixtures that ship with the package, built in code with no downloads:

- :mod:`~saesteer.testing.tiny`: a tiny random transformer-lens model with a byte-level tokenizer and a
  random SAE for it (``--model tiny-random --sae tiny`` on the CLI);
- :mod:`~saesteer.testing.tiny_hf`: a tiny random transformers Gemma 3 model (the transformers backend);
- :mod:`~saesteer.testing.synthetic`: a synthetic index with planted features, written through the
  index's own table writers (search tests and benchmarks at any size).

Library code uses them only to resolve the ``tiny-random`` / ``tiny`` names; nothing imports them at
package import time.
"""
