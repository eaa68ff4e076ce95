"""Which dev set an evaluation was made on: perplexities compare only on the same text."""
import hashlib
import json
from typing import Any, Dict, List


def dev_digest(sentences: List[List[str]]) -> str:
    """A fingerprint of the dev sentences, stored with each evaluation."""
    digest = hashlib.sha256()
    for sentence in sentences:
        digest.update(json.dumps(sentence, ensure_ascii=False).encode("utf8"))
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def same_dev_set(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    """Were two evaluations made on the same dev text? Checkpoints from before the fingerprint have only n_targets."""
    if "dev_digest" in a and "dev_digest" in b:
        return a["dev_digest"] == b["dev_digest"]
    return a.get("n_targets") == b.get("n_targets")


def on_last_dev_set(history: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The evaluations made on the same dev set as the last one (a --resume may have changed it)."""
    return [h for h in history if same_dev_set(h, history[-1])] if history else []


__all__ = ["dev_digest", "same_dev_set", "on_last_dev_set"]
