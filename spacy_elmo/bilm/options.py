"""The biLM hyper-parameters, read from and written to bilm-tf's options.json."""
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

ACTIVATIONS = ("relu", "tanh")
# Upper bounds on what an options.json may ask for. The published models use LSTM <= 4096, projection
# <= 512, 2 layers, <= 2 highway layers, 7 filters of <= 1024 (2048 in all) and 50 characters; these allow
# models several times larger, but stop an edited or hostile file from making us allocate many GB (or
# loop for minutes) before the weight file is even looked at.
LIMITS = {
    "lstm.dim": 32768,
    "lstm.projection_dim": 8192,
    "lstm.n_layers": 32,
    "char_cnn.n_highway": 32,
    "char_cnn.embedding.dim": 1024,
    "char_cnn.max_characters_per_token": 1024,
    "char_cnn.filters (count)": 64,
    "char_cnn.filters (total)": 65536,
}


class OptionsError(ValueError):
    pass


@dataclass
class BiLMOptions:
    lstm_dim: int = 4096
    projection_dim: int = 512
    n_layers: int = 2
    cell_clip: float = 3.0
    proj_clip: float = 3.0
    use_skip_connections: bool = True
    char_dim: int = 16
    filters: List[Tuple[int, int]] = field(
        default_factory=lambda: [(1, 32), (2, 32), (3, 64), (4, 128), (5, 256), (6, 512), (7, 1024)]
    )
    n_highway: int = 2
    activation: str = "relu"
    n_characters: int = 262
    max_characters_per_token: int = 50
    # Keys of options.json we do not interpret (e.g. training settings) are kept so save writes them back.
    extra: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        filters = []
        for f in self.filters:
            try:
                width, n = f
                filters.append((int(width), int(n)))
            except (TypeError, ValueError):
                problems.append(f"char_cnn.filters entry {f!r} is not [width, number_of_filters]")
        self.filters = filters
        if not isinstance(self.use_skip_connections, bool):
            problems.append(f"lstm.use_skip_connections must be true or false, not {self.use_skip_connections!r}")
        for key, value, low in (("lstm.dim", self.lstm_dim, 1), ("lstm.projection_dim", self.projection_dim, 1),
                                ("lstm.n_layers", self.n_layers, 1), ("char_cnn.n_highway", self.n_highway, 0),
                                ("char_cnn.embedding.dim", self.char_dim, 1),
                                ("char_cnn.max_characters_per_token", self.max_characters_per_token, 3)):
            if not low <= value <= LIMITS[key]:
                problems.append(f"{key} is {value}; it must be between {low} and {LIMITS[key]}")
        for key, clip in (("lstm.cell_clip", self.cell_clip), ("lstm.proj_clip", self.proj_clip)):
            if not 0.0 <= clip < float("inf"):  # 0 means no clipping; NaN fails this too
                problems.append(f"{key} is {clip}; it must be a finite number >= 0 (0: no clipping)")
        if len(self.filters) > LIMITS["char_cnn.filters (count)"]:
            problems.append(f"char_cnn.filters has {len(self.filters)} entries; at most {LIMITS['char_cnn.filters (count)']}")
        if any(width < 1 or n < 1 for width, n in self.filters):
            problems.append(f"char_cnn.filters {[list(f) for f in self.filters]} has a width or count below 1")
        elif self.n_filters > LIMITS["char_cnn.filters (total)"]:
            problems.append(f"char_cnn.filters total {self.n_filters} filters; at most {LIMITS['char_cnn.filters (total)']}")
        if self.activation not in ACTIVATIONS:
            problems.append(f"char_cnn.activation is {self.activation!r}; supported: {', '.join(ACTIVATIONS)}")
        if self.n_characters not in (261, 262):
            problems.append(f"char_cnn.n_characters is {self.n_characters}; bilm-tf models use 261 or 262")
        if not self.filters:
            problems.append("char_cnn.filters is empty")
        for width, _ in self.filters:
            if width > self.max_characters_per_token:
                problems.append(f"filter width {width} exceeds max_characters_per_token")
        if problems:
            raise OptionsError("Unsupported biLM options: " + "; ".join(problems))

    @property
    def n_filters(self) -> int:
        return sum(n for _, n in self.filters)

    @property
    def output_dim(self) -> int:
        return 2 * self.projection_dim

    @property
    def n_outputs(self) -> int:
        """Layers written per token: the token layer plus one per LSTM layer."""
        return self.n_layers + 1

    def flops_per_token(self) -> int:
        """Forward multiply-adds x2 per token: convs, highway, projection, LSTMs (both directions)."""
        conv = sum(2 * width * self.char_dim * n * (self.max_characters_per_token - width + 1) for width, n in self.filters)
        highway = self.n_highway * 2 * 2 * self.n_filters * self.n_filters
        proj = 2 * self.n_filters * self.projection_dim
        P, C = self.projection_dim, self.lstm_dim
        lstm = 2 * self.n_layers * (2 * (P + P) * 4 * C + 2 * C * P)
        return conv + highway + proj + lstm

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "BiLMOptions":
        try:
            lstm, cnn = data["lstm"], data["char_cnn"]
            kwargs = dict(
                lstm_dim=int(lstm["dim"]),
                projection_dim=int(lstm["projection_dim"]),
                n_layers=int(lstm["n_layers"]),
                cell_clip=float(lstm.get("cell_clip") or 0.0),
                proj_clip=float(lstm.get("proj_clip") or 0.0),
                use_skip_connections=lstm.get("use_skip_connections", True),  # a bool; "false" is refused
                char_dim=int(cnn["embedding"]["dim"]),
                filters=list(cnn["filters"]),
                n_highway=int(cnn.get("n_highway", 0)),
                activation=str(cnn.get("activation", "relu")),
                n_characters=int(cnn.get("n_characters", 262)),
                max_characters_per_token=int(cnn.get("max_characters_per_token", 50)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise OptionsError(f"options.json is missing or has a malformed key: {err!r}") from err
        extra = {k: v for k, v in data.items() if k not in ("lstm", "char_cnn")}
        return cls(**kwargs, extra=extra)

    def to_dict(self) -> Dict[str, Any]:
        data: Dict[str, Any] = dict(self.extra)
        data["lstm"] = {
            "dim": self.lstm_dim,
            "projection_dim": self.projection_dim,
            "n_layers": self.n_layers,
            "cell_clip": self.cell_clip,
            "proj_clip": self.proj_clip,
            "use_skip_connections": self.use_skip_connections,
        }
        data["char_cnn"] = {
            "embedding": {"dim": self.char_dim},
            "filters": [list(f) for f in self.filters],
            "n_highway": self.n_highway,
            "activation": self.activation,
            "n_characters": self.n_characters,
            "max_characters_per_token": self.max_characters_per_token,
        }
        return data

    @classmethod
    def from_file(cls, path: Union[str, Path]) -> "BiLMOptions":
        path = Path(path)
        if not path.is_file():
            raise OptionsError(f"Options file not found: {path}. Expected bilm-tf's options.json.")
        try:
            text = path.read_text(encoding="utf8")
        except UnicodeDecodeError as err:
            raise OptionsError(f"Options file {path} is not UTF-8 text (byte {err.start}); expected bilm-tf's options.json.") from err
        except OSError as err:
            raise OptionsError(f"Cannot read options file {path}: {err.strerror or err}; check its permissions.") from err
        try:
            data = json.loads(text)
        except ValueError as err:
            raise OptionsError(f"Options file {path} is not valid JSON: {err}") from err
        except RecursionError as err:  # json recurses once per nesting level
            raise OptionsError(f"Options file {path} is nested too deeply to be bilm-tf's options.json; replace it with "
                               "the options.json that came with the weights.") from err
        if not isinstance(data, dict):
            raise OptionsError(f"Options file {path} holds a JSON {type(data).__name__}, not the object of bilm-tf's options.json.")
        try:
            return cls.from_dict(data)
        except OptionsError as err:
            raise OptionsError(f"{path}: {err}") from err
