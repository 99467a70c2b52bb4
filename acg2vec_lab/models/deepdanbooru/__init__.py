"""DeepDanbooru (ResNet tagger), its loaders for released files, and illust2vec cut from its trunk.

Modules: ``config`` (dataclass), ``tf_model`` (Keras builders + graph topology), ``torch_model``
(the same network in PyTorch), ``loaders`` (project folders, legacy h5, the PyTorch port's state
dict), ``illust2vec`` (tags + embedding in one forward pass). TensorFlow/torch load lazily.
"""
