"""SageMaker's image-classification hyperparameters as one typed, validated object.

:class:`HyperParameters` holds every hyperparameter of SageMaker's built-in Image
Classification (MXNet) algorithm under its SageMaker name, with SageMaker's default. Each
field is declared once, in that class (:mod:`.table`); :data:`FIELDS` derived from it
drives parsing, range checks, the string form and the GUI form. The package is split by
reason to change: :mod:`.values` (what one value may be, its text form), :mod:`.table`
(the fields), :mod:`.rules` (rules between fields and against the data) and :mod:`.files`
(JSON files and ``NAME=VALUE`` overrides). Import from the package.

Values arrive in SageMaker's all-strings form (``{"epochs": "30", "early_stopping":
"true"}``) or as native JSON values (``30``, ``True``, ``[10, 20]``). An empty text or a JSON
``null`` means "not set": the SageMaker default (``None`` for the optional ones).

Decisions where SageMaker leaves room:

* ``resize`` must be *strictly* larger than image_shape's height and width: SageMaker's
  documentation says it "should be larger than both the width and height components of
  image_shape to prevent training failure", so ``resize == H`` is refused too.
* ``use_weighted_loss=1`` without ``multi_label=1`` is a warning, not an error: SageMaker
  accepts it and ignores it ("used only when multi_label = 1").
* A given ``num_classes`` or ``num_training_samples`` that disagrees with the data is a
  warning, except when training could not work: fewer classes than the data's labels, or a
  multi-label class count that differs from the data's label columns, is an error.
* ``augmentation_type="none"`` is our name for SageMaker's "no value"; the string form omits
  it, since SageMaker accepts only crop, crop_color and crop_color_transform.
* Names starting with ``_`` (SageMaker's own bookkeeping, such as ``_tuning_objective_metric``
  in the hyperparameters of a tuning job's training jobs) are ignored.

**Bounds.** Every value that could exhaust memory, disk or time has an upper bound, checked
before any work starts: ``epochs`` and the other epoch counts at most :data:`MAX_EPOCHS`,
``num_classes`` and ``top_k`` at most :data:`MAX_CLASSES` (the message says what the final
layer would weigh), image_shape's height and width and ``resize`` at most
:data:`MAX_IMAGE_SIDE` unless ``allow_large_images`` is set (then
:data:`MAX_LARGE_IMAGE_SIDE`), and ``mini_batch_size`` such that one batch's input and
activations (:func:`batch_memory`, an estimate from the ResNet's shape) stay within
:data:`BATCH_MEMORY_LIMIT`.

**Our extensions.** Fields marked ``ours`` (``allow_large_images``) are not SageMaker's:
:meth:`HyperParameters.to_sagemaker` leaves them out, since SageMaker refuses unknown names;
:meth:`HyperParameters.to_strings` (what ``hyperparameters.json`` holds) keeps them when set.
"""

from __future__ import annotations

from imgcls_desktop.core.hyperparams.files import (
    apply_overrides,
    load_hyperparameters,
    save_hyperparameters,
)
from imgcls_desktop.core.hyperparams.rules import BATCH_MEMORY_LIMIT, DataFacts, batch_memory
from imgcls_desktop.core.hyperparams.table import FIELDS, HyperParameters, validate_field
from imgcls_desktop.core.hyperparams.values import (
    AUGMENTATION_TYPES,
    DISTRIBUTED_KV_STORES,
    GROUPS,
    IMAGENET_STAGES,
    KINDS,
    KV_STORES,
    LARGE_IMAGE_DEPTHS,
    MAX_CLASSES,
    MAX_EPOCHS,
    MAX_IMAGE_SIDE,
    MAX_LARGE_IMAGE_SIDE,
    MAX_LR_STEPS,
    MAX_TRAINING_SAMPLES,
    NO_AUGMENTATION,
    OPTIMIZERS,
    PRECISION_DTYPES,
    PRETRAINED_SHAPE,
    SMALL_IMAGE_DEPTHS,
    FieldSpec,
    HyperparameterError,
    Problem,
)

__all__ = [
    "AUGMENTATION_TYPES",
    "BATCH_MEMORY_LIMIT",
    "DISTRIBUTED_KV_STORES",
    "FIELDS",
    "GROUPS",
    "IMAGENET_STAGES",
    "KINDS",
    "KV_STORES",
    "LARGE_IMAGE_DEPTHS",
    "MAX_CLASSES",
    "MAX_EPOCHS",
    "MAX_IMAGE_SIDE",
    "MAX_LARGE_IMAGE_SIDE",
    "MAX_LR_STEPS",
    "MAX_TRAINING_SAMPLES",
    "NO_AUGMENTATION",
    "OPTIMIZERS",
    "PRECISION_DTYPES",
    "PRETRAINED_SHAPE",
    "SMALL_IMAGE_DEPTHS",
    "DataFacts",
    "FieldSpec",
    "HyperParameters",
    "HyperparameterError",
    "Problem",
    "apply_overrides",
    "batch_memory",
    "load_hyperparameters",
    "save_hyperparameters",
    "validate_field",
]
