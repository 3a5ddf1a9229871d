"""The model registry: every card in a models directory, which model provides which label, and loaded detectors."""

from __future__ import annotations

import logging
import pathlib
import threading
from dataclasses import dataclass

from vision.detect.card import ModelCard, load_card
from vision.detect.detector import Detector, DetectorOptions
from vision.detect.errors import CardError, ModelError
from vision.digest import sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModelStatus:
    name: str
    built: bool
    sha256_ok: bool | None  # None: not built, or the card records no sha256


class ModelRegistry:
    """Cards from `models_dir/*.yaml`. Invalid cards are kept in `errors` (FILE: field: message lines), not raised."""

    def __init__(self, models_dir: pathlib.Path) -> None:
        self.models_dir = models_dir
        self.cards: dict[str, ModelCard] = {}
        self.errors: list[str] = []
        self._detectors: dict[tuple[str, DetectorOptions], Detector] = {}
        self._lock = threading.Lock()
        self.reload()

    def reload(self) -> None:
        cards: dict[str, ModelCard] = {}
        errors: list[str] = []
        paths = sorted(self.models_dir.glob("*.yaml")) if self.models_dir.is_dir() else []
        for path in paths:
            try:
                card = load_card(path)
            except CardError as exc:
                errors.extend(exc.lines)
                continue
            cards[card.name] = card
        self.cards, self.errors = cards, errors
        with self._lock:
            self._detectors.clear()

    def card(self, name: str) -> ModelCard:
        try:
            return self.cards[name]
        except KeyError:
            known = ", ".join(sorted(self.cards)) or "none"
            raise ModelError(f"unknown model {name!r} in {self.models_dir} (known: {known})") from None

    def path(self, name: str) -> pathlib.Path:
        return self.models_dir / self.card(name).file

    def providers_of(self, label: str) -> list[str]:
        """Names of the models whose card maps some class to `label`, default models first."""
        names = [c.name for c in self.cards.values() if label in c.labels.values()]
        return sorted(names, key=lambda n: (not self.cards[n].default, n))

    def is_built(self, name: str) -> bool:
        return self.path(name).is_file()

    def status(self, name: str) -> ModelStatus:
        card, path = self.card(name), self.path(name)
        if not path.is_file():
            return ModelStatus(name, built=False, sha256_ok=None)
        ok = None if card.sha256 is None else sha256_file(path) == card.sha256
        return ModelStatus(name, built=True, sha256_ok=ok)

    def default_model(self, label: str = "person") -> str:
        """The model to use when none is named: the first built provider of `label`, else the first provider."""
        candidates = self.providers_of(label)
        if not candidates:
            raise ModelError(f"no model card in {self.models_dir} provides the label {label!r}")
        built = [n for n in candidates if self.is_built(n)]
        return (built or candidates)[0]

    def detector(self, name: str, options: DetectorOptions | None = None) -> Detector:
        """A loaded Detector, cached per (name, options); safe to call from several threads."""
        opts = options or DetectorOptions()
        key = (name, opts)
        with self._lock:
            found = self._detectors.get(key)
            if found is None:
                found = Detector(self.card(name), self.models_dir, opts)
                self._detectors[key] = found
            return found
