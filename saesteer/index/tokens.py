"""Token ids -> display strings, decoded once per id (each id on its own, so that a context shows
exactly the tokens the model saw)."""

from __future__ import annotations

from typing import Any

import numpy as np


class TokenStrings:
    """Maps arrays of token ids to Arrow string arrays, remembering what it decoded."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.decoded: dict[int, str] = {}

    def __call__(self, ids: np.ndarray) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        ids = np.asarray(ids, dtype=np.int64)
        uniq, inverse = np.unique(ids, return_inverse=True)
        missing = [int(i) for i in uniq if int(i) not in self.decoded]
        if missing:
            texts = self.tokenizer.batch_decode([[i] for i in missing], skip_special_tokens=False)
            self.decoded.update(zip(missing, texts, strict=True))
        table = pa.array([self.decoded[int(i)] for i in uniq], type=pa.string())
        return pc.take(table, pa.array(inverse.reshape(-1).astype(np.int64)))
