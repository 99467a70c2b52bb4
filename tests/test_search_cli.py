"""`acg2vec-lab search build/query` and `embed-image/embed-text`, in-process, on small images and vectors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from acg2vec_lab.cli import main


@pytest.fixture()
def folder(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "imgs"
    (d / "sub").mkdir(parents=True)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).resize((40, 40)).save(d / ("sub" if i % 2 else "") / f"{i}.png")
    (d / "broken.png").write_bytes(b"\x89PNG not really")
    return d


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, (json.loads(out.out) if out.out.strip().startswith(("{", "[")) else out.out), out.err


def test_build_from_images_skips_bad_files_and_queries(folder, tmp_path, capsys):
    code, out, _ = run(capsys, "search", "build", "--images", str(folder), "--model", "chance",
                       "--out", str(tmp_path / "ix"), "--profile", "smoke")
    assert code == 0 and out["n"] == 6 and out["kind"] == "flat"
    assert [s["path"] for s in out["skipped"]] == [str(folder / "broken.png")]
    query = folder / "sub" / "3.png"
    code, out, _ = run(capsys, "search", "query", str(tmp_path / "ix"), "--image", str(query), "-k", "10")
    assert code == 0 and len(out["results"]) == 6  # k > index size: only what exists
    assert out["results"][0]["path"] == str(query) and out["results"][0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert [r["rank"] for r in out["results"]] == list(range(1, 7))
    # the chance embedder has no joint text space: a clear error, exit code 2
    code, _, err = run(capsys, "search", "query", str(tmp_path / "ix"), "--text", "1girl")
    assert code == 2 and "no text counterpart" in err


def test_build_from_vectors_with_ids(tmp_path, capsys):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    np.save(tmp_path / "v.npy", x)
    (tmp_path / "ids.txt").write_text("\n".join(str(1000 + i) for i in range(300)))
    code, out, _ = run(capsys, "search", "build", "--vectors", str(tmp_path / "v.npy"), "--ids", str(tmp_path / "ids.txt"),
                       "--out", str(tmp_path / "vx"), "--kind", "ivf_sq8", "--metric", "l2")
    assert code == 0 and out["kind"] == "ivf_sq8" and out["n"] == 300
    from acg2vec_lab.retrieval.index import VectorIndex

    ids, _ = VectorIndex.load(tmp_path / "vx").search(x[7], 1)
    assert ids[0, 0] == 1007
    code, _, err = run(capsys, "search", "build", "--out", str(tmp_path / "nothing"))
    assert code == 2 and "exactly one of" in err


def test_embed_image_and_text(folder, tmp_path, capsys):
    code, out, _ = run(capsys, "embed-image", "--model", "chance", "--profile", "smoke",
                       str(folder / "0.png"), str(folder / "broken.png"))
    assert code == 0 and len(out["vectors"]) == 1 and len(out["vectors"][0]["vector"]) == 128 and len(out["skipped"]) == 1
    code, out, _ = run(capsys, "embed-text", "--model", "chance_text", "--profile", "smoke", "--out",
                       str(tmp_path / "t.npy"), "kancolle", "艦これ")
    assert code == 0 and np.load(tmp_path / "t.npy").shape == (2, 128)
    code, _, err = run(capsys, "embed-text", "--model", "nope", "--profile", "smoke", "x")
    assert code == 2 and "available" in err


def test_text_query_through_a_joint_space(folder, tmp_path, monkeypatch, capsys):
    """A text query of a DCLIP image index ranks by the text tower's vector against the image vectors.

    An empty cache makes DCLIP a random init (so the run needs ``--allow-untrained`` and is labelled
    untrained); the ranking is checked against cosines computed here from the two embedders, which
    a query that used the wrong tower, the wrong space or unnormalised vectors would not reproduce.
    """
    from acg2vec_lab.data.images import iter_image_files, load_image
    from acg2vec_lab.embedders import available

    monkeypatch.setenv("ACG2VEC_CACHE", str(tmp_path / "cache"))
    embs = available("smoke")
    image_emb, text_emb = embs["dclip_image"], embs["dclip_text"]
    assert image_emb.space == text_emb.space == "dclip" and image_emb.weights.startswith("random init")
    code, out, _ = run(capsys, "search", "build", "--images", str(folder), "--model", image_emb.name,
                       "--out", str(tmp_path / "jx"), "--profile", "smoke", "--allow-untrained")
    assert code == 0 and out["untrained"] is True and out["n"] == 6
    code, out, _ = run(capsys, "search", "query", str(tmp_path / "jx"), "--text", "1girl, solo", "-k", "3",
                       "--allow-untrained")
    assert code == 0 and out["text_model"] == text_emb.name and out["untrained"] is True
    paths = [p for p in iter_image_files(folder) if p.name != "broken.png"]
    img = image_emb.encode([load_image(p) for p in paths])
    txt = text_emb.encode(["1girl, solo"])[0]
    cos = img @ txt / (np.linalg.norm(img, axis=1) * np.linalg.norm(txt))
    expected = [str(paths[i]) for i in np.argsort(-cos)[:3]]
    assert [r["path"] for r in out["results"]] == expected
    np.testing.assert_allclose([r["score"] for r in out["results"]], np.sort(cos)[::-1][:3], atol=1e-4)
