"""Pix2Score (ACG2vec ``deepix_v4``): a ResNet101V2 trunk with bookmark / view / sanity softmax heads, in TensorFlow."""
