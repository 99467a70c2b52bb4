"""JoyTag (fpgaminer/joytag): a ViT-B/16 multi-label tagger with a CNN stem at 448 px, in PyTorch."""
