"""The inference wing: what a trained model is used for, as library functions the CLI and the web explorer call.

* :mod:`~bert.inference.pipelines`: load a model by name or folder, fill-mask, next sentence, sentence and word
  vectors, similarity;
* :mod:`~bert.inference.study`: attention maps and the attention / similarity pictures;
* :mod:`~bert.inference.perplexity`: pseudo-log-likelihoods and pseudo-perplexity of a masked LM;
* :mod:`~bert.inference.onnx_export`: one ONNX file from our modules, checked in onnxruntime;
* :mod:`~bert.inference.checkpoints`: checkpoint folders rewritten whole (convert, quantize) and counted (info).

The precision swaps (float32 through oneDNN, int8, bfloat16) sit below the model base in :mod:`bert.precision`:
loading an int8 checkpoint needs them.
"""
