"""DCLIP: CLIP fine-tuned on captions built from Danbooru tags."""
