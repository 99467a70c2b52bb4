"""Read (and, for tests, write) the files DeepDanbooru models are released in, by topology.

* **Project folder** (``project.json``, ``model-<name>.keras`` or ``model-<name>.h5``, ``tags.txt``,
  optional ``categories.json``): :func:`load_project`.
* **Legacy Keras 2 h5** (root attrs ``keras_version``/``backend``/``model_config``; group
  ``model_weights`` with ``layer_names`` and per-layer ``weight_names`` such as ``conv2d/kernel:0``;
  float32 or float16): :func:`read_legacy_h5` walks the graph stored in ``model_config`` to find each
  conv/BN's block position (:func:`tf_model.topology`) and reads its datasets with h5py. Layer name
  suffixes are never used to decide where a weight goes (they shift between Keras sessions).
* **TorchDeepDanbooru state dict** (``n_Conv_0`` ... ``n_Conv_<k>`` with BN folded, bias on all but
  the last, a ``tags`` key): :func:`read_port_state_dict` parses the conv sequence by shapes (the
  port numbers a projection block's shortcut before its main path in most stages but after it in
  v3's stage 3, so numbering alone does not say which conv is which).

Everything meets in the canonical weight dict of :mod:`.torch_model` (keys ``stem``, ``b<i>.c1``,
``b<i>.c2``, ``b<i>.c3``, ``b<i>.sc``, ``head``).

The code lives in :mod:`.canonical` (the canonical dict, :class:`LoadError`), :mod:`.h5` (Keras files),
:mod:`.project` (project folders) and :mod:`.torch_port` (the TorchDeepDanbooru ``.pt``); this module
gathers them under one name.

Nothing in a file runs: a Keras file's architecture is checked against the built-in layer allow-list
(:func:`acg2vec_lab.io_safety.check_keras_config`: a ``Lambda`` or custom layer is refused, naming the
file and the layer) before Keras or our reader touches it, ``.keras`` files load with
``safe_mode=True``, and torch files with ``weights_only=True`` (:func:`safe_torch_load`).
"""
from __future__ import annotations

from acg2vec_lab.models.deepdanbooru.canonical import (  # noqa: F401
    BN_NAMES,
    LoadError,
    keras_canonical,
    set_keras_canonical,
)
from acg2vec_lab.models.deepdanbooru.h5 import (  # noqa: F401
    H5Contents,
    _attr_str,
    load_h5_model,
    load_keras_file,
    read_legacy_h5,
    write_legacy_h5,
)
from acg2vec_lab.models.deepdanbooru.project import (  # noqa: F401
    ProjectModel,
    load_project,
    read_categories,
    read_project_json,
    read_tags,
    tag_categories,
    write_project,
)
from acg2vec_lab.models.deepdanbooru.torch_port import (  # noqa: F401
    keras_to_torch,
    load_port_into_torch,
    parity_ledger,
    port_conv_mapping,
    read_port_state_dict,
    safe_torch_load,
    write_port_state_dict,
)
