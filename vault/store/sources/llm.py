"""The `keys.json` of Simon Willison's `llm` (`llm keys path` prints where it is).

A flat JSON object from an alias to a key, `{"openai": "sk-…", "work": "sk-…"}`, with one
comment entry `"// Note": "This file stores secret API credentials. Do not share!"`. Every
alias becomes a candidate named after it; aliases that `llm` plugins use for other providers
(`anthropic`, `gemini`, …) are reported and left alone.
"""

from __future__ import annotations

import json
from pathlib import Path

from vault.errors import SourceError
from vault.model.secret import Secret
from vault.store.sources import Found, NotAKey, Reading, read_text

# the key names llm's plugins read for providers that are not OpenAI
OTHER_PROVIDERS = frozenset(
    {
        "anthropic", "claude", "gemini", "google", "mistral", "groq", "cohere", "perplexity",
        "replicate", "together", "fireworks", "huggingface", "cerebras", "bedrock", "vertex",
        "xai", "grok", "reka", "ollama",
    }
)  # fmt: skip


def read_llm_keys(path: Path) -> Reading:
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise SourceError(f"{path} is not valid JSON (line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise SourceError(f"{path} is not llm's keys.json (an object of alias to key)")
    found: list[Found] = []
    not_keys: list[NotAKey] = []
    for alias, value in data.items():
        where = f"{path} [{alias}]"
        if alias.startswith("//"):
            continue  # llm's own comment entry
        if not isinstance(value, str) or not value.strip():
            not_keys.append(NotAKey(where, "not a key (not a string)"))
        elif alias.lower() in OTHER_PROVIDERS:
            not_keys.append(NotAKey(where, f"llm's key for {alias}, not for OpenAI"))
        else:
            found.append(Found(where, Secret(value.strip()), alias))
    return Reading(found, not_keys)
