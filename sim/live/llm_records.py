"""A live run's model calls as the simulator's per-attempt table (``llm.parquet``).

Agents report each attempt's calls in its end document (``llm``: tokens,
throttles, backoff; see ``sim.live.llm_calls``). Folded here into the rows
``sim.model.llm_work`` writes, with the same columns and outcomes
(``completed``, ``rate_limited``, another failure's reason), so the summary's
``llm`` block and its dollars mean the same for a live run and a simulated one.
An attempt reported twice (a redelivery) counts once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from sim.metrics.llm_summary import ATTEMPT_COLUMNS
from sim.scenario.llm import Llm
from sim.world.llm_fleet import tokens_usd


def llm_frame(llm: Llm, categories: dict[int, str], ends: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per reported attempt that ran model calls; *categories*: task id → category."""
    rows: dict[tuple[int, int], tuple[Any, ...]] = {}
    for doc in ends:
        calls = doc.get("llm")
        key = (int(doc["task_id"]), int(doc["attempt"]))
        if not isinstance(calls, dict) or key in rows:
            continue
        model_name = str(calls["model"])
        model = llm.models.get(model_name)
        input_tokens, cached, output = (
            int(calls["input_tokens"]),
            int(calls["cached_tokens"]),
            int(calls["output_tokens"]),
        )
        if doc["outcome"] == "completed":
            outcome = "completed"
        else:
            outcome = str(doc.get("reason") or "failed")
        rows[key] = (
            key[0],
            key[1],
            categories.get(key[0], ""),
            model_name,
            model.provider if model is not None else "",
            float(doc["start_s"]),
            float(doc["end_s"]),
            outcome,
            int(calls["calls"]),
            input_tokens,
            cached,
            output,
            int(calls["throttled"]),
            float(calls["retry_wait_s"]),
            tokens_usd(model, input_tokens, cached, output) if model is not None else 0.0,
        )
    frame = pd.DataFrame([rows[k] for k in sorted(rows)], columns=list(ATTEMPT_COLUMNS))
    frame.insert(0, "replication", np.zeros(len(frame), dtype=np.int64))
    return frame
