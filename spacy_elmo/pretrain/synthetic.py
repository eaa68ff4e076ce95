"""A small probabilistic grammar that writes a corpus with learnable structure (number agreement,
selectional preferences, optional modifiers), for tests, smoke runs and benchmarks without real text."""
import random
from pathlib import Path
from typing import List, Union

NOUNS = ["cat", "dog", "bird", "child", "teacher", "farmer", "doctor", "robot", "king", "horse", "writer", "pilot",
         "baker", "student", "lawyer", "singer"]
PLURAL = {n: (n[:-1] + "ren" if n == "child" else n + "s") for n in NOUNS}
OBJECTS = ["apple", "book", "song", "letter", "car", "house", "river", "bridge", "cake", "poem", "ship", "garden"]
VERBS = {  # verb -> objects it selects
    "eat": ["apple", "cake"], "read": ["book", "letter", "poem"], "write": ["book", "letter", "poem", "song"],
    "sing": ["song", "poem"], "build": ["house", "bridge", "ship", "garden"], "see": OBJECTS,
    "cross": ["river", "bridge"], "drive": ["car", "ship"], "paint": ["house", "car", "garden", "ship"],
}
ADJS = ["old", "young", "happy", "tall", "small", "clever", "quiet", "brave"]
OBJ_ADJS = ["red", "big", "new", "long", "green", "strange"]
ADVS = ["quickly", "slowly", "often", "rarely", "carefully"]
PLACES = ["in the park", "near the town", "by the sea", "at night", "on monday", "in winter"]


def _subject(rng: random.Random):
    plural = rng.random() < 0.4
    noun = rng.choice(NOUNS)
    det = rng.choice(["the", "some", "many", "two"]) if plural else rng.choice(["the", "a", "one", "every"])
    words = [det]
    if rng.random() < 0.4:
        words.append(rng.choice(ADJS))
    words.append(PLURAL[noun] if plural else noun)
    return words, plural


def sentence(rng: random.Random) -> List[str]:
    words, plural = _subject(rng)
    if rng.random() < 0.2:
        words += ["who", "likes" if not plural else "like", rng.choice(OBJECTS) + "s"]
    if rng.random() < 0.25:
        words.append(rng.choice(ADVS))
    verb = rng.choice(sorted(VERBS))
    words.append(verb if plural else (verb + "es" if verb.endswith(("sh", "ch", "s")) else verb + "s"))
    obj = rng.choice(VERBS[verb])
    words.append(rng.choice(["the", "a", "this"]))
    if rng.random() < 0.35:
        words.append(rng.choice(OBJ_ADJS))
    words.append(obj)
    if rng.random() < 0.3:
        words += rng.choice(PLACES).split()
    if rng.random() < 0.15:
        words += ["and", "then", "sleep" if plural else "sleeps"]
    return words + ["."]


def write_corpus(path: Union[str, Path], n_sentences: int, seed: int = 0) -> Path:
    """One whitespace-tokenised sentence per line (bilm-tf format)."""
    rng = random.Random(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf8") as fout:
        for _ in range(n_sentences):
            fout.write(" ".join(sentence(rng)) + "\n")
    return path


__all__ = ["sentence", "write_corpus"]
