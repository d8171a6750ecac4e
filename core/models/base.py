"""The base class of every fauve model: an ``nn.Module`` that saves to and loads from a Hub repo.

A model folder holds ``config.json`` (method, architecture, style names, loss network and its
preprocessing, training recipe) and ``model.safetensors``. Loading never unpickles anything.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import torch
from huggingface_hub import ModelHubMixin, constants, hf_hub_download
from safetensors.torch import load_file, save_file
from torch import nn

from fauve.errors import ModelFileError

METHODS: dict[str, type["StyleModel"]] = {}

# Keys every config.json carries besides the architecture's own arguments.
META_KEYS = ("num_styles", "style_names", "loss_net", "training", "description", "license", "style_sources")


class StyleModel(
    nn.Module,
    ModelHubMixin,
    library_name="fauve",
    tags=["style-transfer", "image-to-image"],
    pipeline_tag="image-to-image",
):
    """Common interface: ``forward(x, style_weights=None, ...)`` maps RGB in [0, 1] to RGB in [0, 1].

    Subclasses declare ``method`` (``class X(StyleModel, method="ulyanov")``) and the architecture
    arguments listed by ``arch_keys``.
    """

    method: ClassVar[str] = ""
    size_multiple: ClassVar[int] = 4
    # Pixels of mirrored photo the pipeline adds on every side and crops away again: room for a network whose
    # borders differ from its interior (adain's zero-padded VGG encoder) to put that difference outside the picture.
    border_margin: ClassVar[int] = 0
    multi_style: ClassVar[bool] = False
    accepts_style_image: ClassVar[bool] = False

    def __init_subclass__(cls, method: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if method:
            cls.method = method
            METHODS[method] = cls

    def __init__(
        self,
        num_styles: int = 1,
        style_names: list[str] | None = None,
        loss_net: dict | None = None,
        training: dict | None = None,
        description: str | None = None,
        license: str | None = None,
        style_sources: list[str] | None = None,
        method: str | None = None,
        fauve_version: str | None = None,  # noqa: ARG002 - recorded in config.json, not needed to build
    ) -> None:
        super().__init__()
        if method is not None and method != self.method:
            raise ModelFileError(
                f"config.json says method {method!r} but it is being loaded as {self.method!r}.",
                "Load it with fauve.models.load_model(path), which picks the class from config.json.",
            )
        self.num_styles = num_styles
        self.style_names = list(style_names) if style_names else [f"style{i}" for i in range(max(num_styles, 0))]
        if len(self.style_names) != num_styles:
            raise ModelFileError(f"{len(self.style_names)} style names for {num_styles} styles.", "Give one name per style.")
        self.loss_net = loss_net
        self.training_recipe = training
        self.description = description
        self.license = license
        self.style_sources = style_sources

    # -- configuration ---------------------------------------------------------------------------
    arch_keys: ClassVar[tuple[str, ...]] = ("width", "upsample", "norm", "num_blocks", "vgg_source", "residual_output")
    # Buffers computed from the training paintings when a run is exported (not learned): `--init` skips them.
    style_buffers: ClassVar[tuple[str, ...]] = ()

    def hub_config(self) -> dict[str, Any]:
        from fauve import __version__

        config: dict[str, Any] = {"method": self.method, "fauve_version": __version__}
        for key in self.arch_keys:
            if key in self._init_params() and hasattr(self, key):
                config[key] = getattr(self, key)
        config.update(
            num_styles=self.num_styles,
            style_names=self.style_names,
            loss_net=self.loss_net,
            training=self.training_recipe,
            description=self.description,
            license=self.license,
            style_sources=self.style_sources,
        )
        return {k: v for k, v in config.items() if v is not None}

    @classmethod
    def _init_params(cls) -> set[str]:
        import inspect

        return set(inspect.signature(cls.__init__).parameters)

    def extra_repr(self) -> str:
        return f"method={self.method}, styles={self.num_styles}"

    # -- saving and loading (safetensors + config.json only) ------------------------------------
    def save_pretrained(self, save_directory: str | Path, *, config: dict | None = None, **kwargs: Any):  # type: ignore[override]
        return super().save_pretrained(save_directory, config=self.hub_config(), **kwargs)

    def generate_model_card(self, *args: Any, **kwargs: Any):
        """Our own card (method, paper, styles, loss network), not huggingface_hub's generic one."""
        from huggingface_hub import ModelCard

        from fauve.modelcard import render_model_card

        return ModelCard(render_model_card(self.hub_config()))

    def _save_pretrained(self, save_directory: Path) -> None:
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        tmp = Path(save_directory) / (constants.SAFETENSORS_SINGLE_FILE + ".tmp")
        save_file(state, str(tmp), metadata={"format": "pt", "method": self.method})
        os.replace(tmp, Path(save_directory) / constants.SAFETENSORS_SINGLE_FILE)

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        map_location: str = "cpu",
        **model_kwargs: Any,
    ) -> "StyleModel":
        model = cls(**model_kwargs)
        if os.path.isdir(model_id):
            weights = Path(model_id) / constants.SAFETENSORS_SINGLE_FILE
            if not weights.is_file():
                raise ModelFileError(f"{model_id} has no {constants.SAFETENSORS_SINGLE_FILE}.", "A fauve model folder holds config.json and model.safetensors.")
        else:
            weights = Path(
                hf_hub_download(
                    repo_id=model_id,
                    filename=constants.SAFETENSORS_SINGLE_FILE,
                    revision=revision,
                    cache_dir=cache_dir,
                    force_download=force_download,
                    token=token,
                    local_files_only=local_files_only,
                )
            )
        try:
            state = load_file(str(weights), device=str(map_location))
        except Exception as err:  # safetensors raises its own error types for truncated/corrupt files
            raise ModelFileError(f"Cannot read {weights}: {err}", "The file is corrupt or incomplete; download it again (fauve hub pull --force).") from err
        own = model.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        wrong_shape = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
        if missing or unexpected or wrong_shape:
            raise ModelFileError(
                f"{weights} does not match its config.json (missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong_shape[:3]}).",
                "The folder mixes files from different models; re-export or re-download it.",
            )
        model.load_state_dict(state)  # copies into float32 parameters, so fp16 files load too
        model.eval()
        return model

    def to_half_state(self) -> dict[str, torch.Tensor]:
        return {k: (v.half() if v.is_floating_point() else v) for k, v in self.state_dict().items()}


def read_config(path_or_repo: str | Path, *, revision: str | None = None, token: str | None = None,
                local_files_only: bool = False) -> tuple[dict[str, Any], str]:
    """Return (config, folder-or-repo-id) for a local model folder or a Hub repo id."""
    path = Path(path_or_repo)
    if path.is_dir():
        cfg_file = path / constants.CONFIG_NAME
        if not cfg_file.is_file():
            raise ModelFileError(f"{path} has no config.json.", "A fauve model folder holds config.json and model.safetensors.")
        source = str(path)
    elif path.exists() or str(path_or_repo).count("/") != 1:
        raise ModelFileError(f"{path_or_repo} is not a model folder or an owner/name Hub repo id.", "Pass a folder made by `fauve train` or a repo id like fauve/ulyanov-starry-night.")
    else:
        cfg_file = Path(hf_hub_download(str(path_or_repo), constants.CONFIG_NAME, revision=revision, token=token, local_files_only=local_files_only))
        source = str(path_or_repo)
    try:
        config = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{cfg_file} is not valid JSON: {err}", "Re-download or re-export the model.") from err
    return config, source


def load_model(path_or_repo: str | Path, *, revision: str | None = None, token: str | None = None,
               local_files_only: bool = False, device: str | torch.device = "cpu") -> StyleModel:
    """Load any fauve model from a folder or a Hub repo; the class comes from config.json's ``method``."""
    config, source = read_config(path_or_repo, revision=revision, token=token, local_files_only=local_files_only)
    method = config.get("method")
    if method not in METHODS:
        raise ModelFileError(f"{path_or_repo}: unknown method {method!r} in config.json.", f"Known methods: {', '.join(sorted(METHODS))}.")
    model = METHODS[method].from_pretrained(source, revision=revision, token=token, local_files_only=local_files_only)
    return model.to(device)
