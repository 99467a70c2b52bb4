"""SmilingWolf's WD14 / wd-v3 taggers: the released ONNX folder (``model.onnx`` + ``selected_tags.csv``).

:class:`~acg2vec_lab.models.wd14.tagger.WD14Tagger` is a :class:`~acg2vec_lab.tagging.base.Tagger`, run
with onnxruntime; :func:`~acg2vec_lab.models.wd14.tagger.load_wd14_tagger` loads a folder. Nothing
heavy is imported here: onnxruntime and onnx are imported inside the functions that need them.
"""
