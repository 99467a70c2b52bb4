"""Real-CUGAN (bilibili UpCunet v3): PyTorch reference, ncnn/.pth loaders, TF/Keras port, tiling."""
