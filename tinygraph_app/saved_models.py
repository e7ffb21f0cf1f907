"""Models rebuilt from checkpoints written by ``tinygraph train --save``, for ``sample`` and ``export``."""
from rnn_models.checkpoint import CheckpointError, restore
from rnn_models.models import build_model
from rnn_models.registry import is_spec


def build_saved_model(path, checkpoint, trust_cell):
    """The model a checkpoint's config describes, with its saved parameters; a config naming a user's
    cell (``package.module:ClassName``) imports that module only with ``trust_cell``, since the name
    comes from the file. ``sample`` loads its models this way too."""
    model_config = checkpoint.config["model"]
    cell = model_config.get("cell")
    if is_spec(cell) and not trust_cell:
        raise CheckpointError(f"checkpoint {path!r} names its cell {cell!r}; building it imports module "
                              f"{cell.partition(':')[0]!r}. Pass --trust-cell if you trust this file")
    try:
        model = build_model(model_config)
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {path!r}: its model config is invalid ({exc})") from None
    restore(checkpoint, model)
    return model
