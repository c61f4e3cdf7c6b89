"""The service bundle: one directory holding everything ``onerec serve`` loads.

::

    MODEL_DIR/
      bundle.json                 format + version, data set, parts, sha256 of every file
      items.parquet               item_idx, item_id, side columns (the data set's item table)
      user_histories.parquet      user_idx, user_id, history: list[i32] (item_idx, oldest first)
      generator/                  optional: the OneRec generator
        config.json               GeneratorConfig (HF style)
        model.safetensors         weights
        semantic_ids.safetensors  codes [num_items, C] int64 + the prefix trie's level tables
      retrieval/                  optional: a CRM model directory, exactly as
                                  onerec.retrieval.artifact.save_retrieval_model writes it
                                  (config.json, model.safetensors, condition.json,
                                  item_index.faiss/.json, user_state.safetensors, ids.json, …)

Only JSON, Parquet, safetensors and faiss's own index serialisation — nothing is unpickled. At
least one of ``generator/`` and ``retrieval/`` is present; both index items and users by the
same ``item_idx`` / ``user_idx`` as ``items.parquet`` / ``user_histories.parquet``
(:func:`onerec.serve.build_bundle` checks this when it assembles the bundle).
"""

from __future__ import annotations

BUNDLE_FORMAT = "onerec-service-bundle"
BUNDLE_VERSION = 1

MANIFEST_FILE = "bundle.json"
ITEMS_FILE = "items.parquet"
USER_HISTORIES_FILE = "user_histories.parquet"
GENERATOR_DIR = "generator"
RETRIEVAL_DIR = "retrieval"
GENERATOR_CONFIG = "config.json"
GENERATOR_WEIGHTS = "model.safetensors"
SEMANTIC_IDS_FILE = "semantic_ids.safetensors"
CODES_TENSOR = "codes"
