"""``onerec demo``: the whole OneRec + CRM pipeline on the embedded KuaiRand data, with a report.

Stages (each a function of the earlier stages' outputs, each writing its directory atomically):
prepare → embeddings → tokenizer → generator → reward → ipa → crm → evaluate → bundle; then
``report.html`` (self-contained, inline SVG) and the terminal tables. See ``docs/demo.md``.
"""

from onerec.demo.config import STAGE_NAMES, DemoConfig
from onerec.demo.pipeline import STAGES, DemoResult, rerender, run_demo

__all__ = ["STAGES", "STAGE_NAMES", "DemoConfig", "DemoResult", "rerender", "run_demo"]
