"""deepix: the DeepDanbooru trunk (cut at ``add_43``) + a ResNet-V2 stack + bookmark/view/sanity heads."""
