"""The model registry: every card in a models directory, which model provides which label, and loaded detectors.

Precision variants: a card with `variant_of: BASE` (e.g. `coco-yolov3-tiny-int8`, the static int8 QDQ copy of
`coco-yolov3-tiny`, `precision: int8`) is not a model of its own — it is never chosen for a label — but a way to run
BASE. `detector(BASE)` loads it instead of BASE's own file when the registry's `precision` asks for it:

- `auto` (default): the int8 variant when the session runs on the CPU only (no accelerator provider) and the variant
  is built and its card records an agreement with BASE at or above its recipe's `min_agreement` (the build refuses to
  write it otherwise); else fp32;
- `int8`: the int8 variant wherever it is built (an error when it is not);
- `fp32`: always BASE's own file.

The detector keeps BASE's name (rates, metrics and incidents speak of the model, not of its file); `runtime_card`
says which card and file actually run.

Pushed models (`POST /v1/models`, content-addressed by sha256): `install({name: Installed})` gives a view of the
registry in which those versions replace (or add to) the cards of their names, with their files where the worker's
verified cache keeps them; an installed version never runs as an int8 variant of the shipped one. Views share the
loaded detectors (cached per name, file and options), so two cameras on one version share one session.
"""

from __future__ import annotations

import copy
import logging
import pathlib
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from vision.detect.card import ModelCard, QuantizeBuild, load_card
from vision.detect.detector import Detector, DetectorOptions
from vision.detect.errors import CardError, ModelError
from vision.detect.precision import Precision
from vision.detect.session import SessionConfig, resolve_providers
from vision.digest import sha256_file

CPU = "CPUExecutionProvider"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModelStatus:
    name: str
    built: bool
    sha256_ok: bool | None  # None: not built, or the card records no sha256


@dataclass(frozen=True, slots=True)
class Installed:
    """A pushed model version ready to run: its card (`file` = `<sha256>.onnx`, `sha256` set) and the directory that
    holds the file (verified)."""

    card: ModelCard
    directory: pathlib.Path

    @property
    def path(self) -> pathlib.Path:
        return self.directory / self.card.file


class ModelRegistry:
    """Cards from `models_dir/*.yaml`. Invalid cards are kept in `errors` (FILE: field: message lines), not raised."""

    def __init__(
        self, models_dir: pathlib.Path, precision: Precision = "auto", session: SessionConfig | None = None
    ) -> None:
        self.models_dir = models_dir
        self.precision: Precision = precision
        #: what `detector(name)` runs with when the caller passes no options (`session`: the process's choice)
        self.default_options = DetectorOptions(session=session) if session is not None else DetectorOptions()
        self.cards: dict[str, ModelCard] = {}
        self.errors: list[str] = []
        self._detectors: dict[tuple[str, pathlib.Path, DetectorOptions], Detector] = {}
        self._lock = threading.Lock()
        self._installed: dict[str, Installed] = {}
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
        self.cards = {**cards, **{n: i.card for n, i in self._installed.items()}}
        self.errors = errors
        with self._lock:
            self._detectors.clear()

    def install(self, models: Mapping[str, Installed]) -> ModelRegistry:
        """A view of this registry with the pushed versions `models` in place of their names (module docs); it
        shares this registry's loaded detectors. The registry itself is unchanged."""
        view = copy.copy(self)
        view._installed = {**self._installed, **models}
        view.cards = {**self.cards, **{n: i.card for n, i in models.items()}}
        return view

    def installed(self, name: str) -> Installed | None:
        """The pushed version this view runs for `name`, or None (the shipped card's file)."""
        return self._installed.get(name)

    def prune(self, keep: Collection[pathlib.Path]) -> int:
        """Forget loaded detectors of pushed files not in `keep` (versions no camera runs any more); returns how
        many. Detectors of the models directory's own files stay."""
        with self._lock:
            gone = [k for k in self._detectors if k[1].parent != self.models_dir and k[1] not in keep]
            for key in gone:
                del self._detectors[key]
        return len(gone)

    def card(self, name: str) -> ModelCard:
        try:
            return self.cards[name]
        except KeyError:
            known = ", ".join(sorted(self.cards)) or "none"
            raise ModelError(f"unknown model {name!r} in {self.models_dir} (known: {known})") from None

    def path(self, name: str) -> pathlib.Path:
        found = self._installed.get(name)
        return found.path if found is not None else self.models_dir / self.card(name).file

    def providers_of(self, label: str) -> list[str]:
        """Names of the models whose card maps some class to `label`, default models first (variants never)."""
        names = [c.name for c in self.cards.values() if label in c.labels.values() and c.variant_of is None]
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

    def int8_variant(self, name: str) -> ModelCard | None:
        """The int8 variant card of `name`, if some card says it is one."""
        found = [c for c in self.cards.values() if c.variant_of == name and c.precision == "int8"]
        return min(found, key=lambda c: c.name) if found else None

    def int8_usable(self, variant: ModelCard) -> bool:
        """Built, and its recorded agreement with the base model meets its recipe's minimum."""
        gate = variant.build.min_agreement if isinstance(variant.build, QuantizeBuild) else 1.0
        return self.is_built(variant.name) and variant.agreement is not None and variant.agreement >= gate

    def runtime_card(self, name: str, options: DetectorOptions | None = None) -> ModelCard:
        """The card whose file `detector(name, options)` runs: `name`'s own or its int8 variant's (module docs)."""
        card = self.card(name)
        if name in self._installed:
            return card  # a pushed version runs as pushed
        variant = self.int8_variant(name) if self.precision != "fp32" else None
        if variant is None:
            if self.precision == "int8" and card.precision != "int8":
                log.warning("precision int8: model %s has no int8 variant; running fp32", name)
            return card
        if self.precision == "int8":
            if not self.is_built(variant.name):
                raise ModelError(
                    f"precision int8: {variant.name} is not built (`safewatch models build {variant.name}`)"
                )
            return variant
        session = (options or self.default_options).session
        cpu_only = all(p == CPU for p in resolve_providers(session.providers))
        return variant if cpu_only and self.int8_usable(variant) else card

    def detector(self, name: str, options: DetectorOptions | None = None) -> Detector:
        """A loaded Detector for the model `name` (its int8 variant's file where `runtime_card` says so, under the
        name `name`), cached per (name, options); safe to call from several threads."""
        opts = options or self.default_options
        card = self.runtime_card(name, opts)
        pushed = self._installed.get(name)
        directory = pushed.directory if pushed is not None else self.models_dir
        key = (name, directory / card.file, opts)
        with self._lock:
            found = self._detectors.get(key)
            if found is None:
                card = card if card.name == name else card.model_copy(update={"name": name})
                found = Detector(card, directory, opts)
                self._detectors[key] = found
            return found
