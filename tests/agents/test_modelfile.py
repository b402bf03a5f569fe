"""Users' model files on the agent side: format and identity, input shapes, and inputs of the model's dtype, with
the real ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from latbench.agents.modelfile import (
    InputSpec,
    ModelFile,
    check_input_names,
    parse_input_shapes,
    random_inputs,
    resolve_shapes,
)
from latbench.agents.runtimes.onnxruntime import OnnxRuntime
from latbench.errors import ModelFileError, ModelInputError, RuntimeUnavailable
from latbench.hashing import sha256_file
from tests.support.modelfiles import mobilenet_onnx, outside_data_onnx, transformer_onnx, unsupported_op_onnx
from tests.support.models import make_conv_model


@pytest.fixture(scope="module")
def transformer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return transformer_onnx(tmp_path_factory.mktemp("models") / "bert.onnx")


def test_input_shapes_parse_and_bad_ones_are_refused() -> None:
    assert parse_input_shapes(["input_ids:1x128", "pixel.values:2x3x8x8"]) == {
        "input_ids": (1, 128),
        "pixel.values": (2, 3, 8, 8),
    }
    for bad, message in [
        ("input_ids", "NAME:DIMxDIM"),
        ("input_ids:1x", "NAME:DIMxDIM"),
        ("input_ids:1,128", "NAME:DIMxDIM"),
        ("input_ids:1x0", "at least 1"),
    ]:
        with pytest.raises(ModelInputError, match=message):
            parse_input_shapes([bad])
    with pytest.raises(ModelInputError, match="two shapes: 1x8 and 1x9"):
        parse_input_shapes(["a:1x8", "a:1x9"])


def test_dynamic_dimensions_need_a_shape_that_fits_the_model() -> None:
    spec = InputSpec("input_ids", (1, "sequence"), np.dtype(np.int64))
    with pytest.raises(ModelInputError) as info:
        resolve_shapes("bert.onnx", [spec], None)
    assert str(info.value) == (
        "model bert.onnx: input 'input_ids' has a dynamic dimension 1 ('sequence'); "
        "give its shape with --input input_ids:1xN"
    )
    assert resolve_shapes("bert.onnx", [spec], {"input_ids": (1, 64), "other": (3,)}) == {"input_ids": (1, 64)}
    with pytest.raises(ModelInputError, match="has 2 dimensions, --input gives 3"):
        resolve_shapes("bert.onnx", [spec], {"input_ids": (1, 64, 1)})
    with pytest.raises(ModelInputError, match="static dimension 0 = 1, --input gives 2"):
        resolve_shapes("bert.onnx", [spec], {"input_ids": (2, 64)})
    tflite_style = InputSpec("x", (1, -1), np.dtype(np.float32))
    with pytest.raises(ModelInputError, match="dynamic dimension 1; give its shape with --input x:1xN"):
        resolve_shapes("m.tflite", [tflite_style], {})


def test_inputs_are_seeded_data_of_each_dtype_and_float32_draws_are_unchanged() -> None:
    specs = [
        InputSpec("image", (1, 3, 4, 4), np.dtype(np.float32)),
        InputSpec("ids", (1, 64), np.dtype(np.int64)),
        InputSpec("mask", (1, 64), np.dtype(np.bool_)),
        InputSpec("half", (2,), np.dtype(np.float16)),
    ]
    shapes = resolve_shapes("m", specs, None)
    arrays = random_inputs(specs, shapes, seed=3)
    assert [a.dtype for a in arrays.values()] == [np.float32, np.int64, np.bool_, np.float16]
    np.testing.assert_array_equal(
        arrays["image"], np.random.default_rng(3).standard_normal((1, 3, 4, 4)).astype(np.float32)
    )
    assert set(np.unique(arrays["ids"])) == {0, 1}
    assert arrays["mask"].any() and not arrays["mask"].all()
    again = random_inputs(specs, shapes, seed=3)
    assert all(np.array_equal(arrays[k], again[k]) for k in arrays)


def test_model_files_are_known_by_content_and_format_whatever_their_names(tmp_path: Path) -> None:
    onnx_path = mobilenet_onnx(tmp_path / "net.onnx")
    model = ModelFile.open(onnx_path)
    assert (model.name, model.format, model.sha256) == ("net.onnx", "onnx", sha256_file(onnx_path))
    assert model.input_names == ("image",) and model.opset == 17
    for name in ("net.bin", "net.tflite", "net"):  # an ONNX file under any name is an ONNX file
        copy = tmp_path / name
        copy.write_bytes(onnx_path.read_bytes())
        opened = ModelFile.open(copy)
        assert (opened.format, opened.sha256, opened.input_names) == ("onnx", model.sha256, ("image",))
    renamed = tmp_path / "lite.onnx"
    renamed.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(32))
    assert ModelFile.open(renamed).format == "tflite"


def test_a_file_that_is_no_model_is_refused_with_what_it_is(tmp_path: Path) -> None:
    onnx_path = mobilenet_onnx(tmp_path / "net.onnx")
    (tmp_path / "notes.onnx").write_text("hello, not a model\n")
    (tmp_path / "cut.onnx").write_bytes(onnx_path.read_bytes()[:4000])
    (tmp_path / "weights.pt").write_bytes(b"\x80\x02}q\x00.")
    (tmp_path / "empty.tflite").write_bytes(b"")
    (tmp_path / "noise.bin").write_bytes(bytes(range(200, 256)))
    (tmp_path / "folder.onnx").mkdir()
    for name, message in [
        ("notes.onnx", "notes.onnx: not a LiteRT or ONNX model (text: 'hello, not a model')"),
        ("weights.pt", "weights.pt: not a LiteRT or ONNX model (a Python pickle)"),
        ("empty.tflite", "empty.tflite: not a LiteRT or ONNX model (an empty file)"),
        ("noise.bin", "noise.bin: not a LiteRT or ONNX model (binary data beginning c8 c9 ca cb cc cd ce cf)"),
        ("cut.onnx", "cut.onnx: not a readable ONNX file (cut short: the field at byte "),
        ("absent.onnx", "absent.onnx: no such file"),
        ("folder.onnx", "folder.onnx: a directory, not a model file"),
    ]:
        with pytest.raises(ModelFileError) as info:
            ModelFile.open(tmp_path / name)
        assert str(info.value).startswith(f"model {tmp_path / name}: ") and message in str(info.value)


def test_input_shapes_are_checked_from_the_file_before_any_engine_loads_it(tmp_path: Path, transformer: Path) -> None:
    bert = ModelFile.open(transformer)
    with pytest.raises(ModelInputError) as info:
        bert.input_shapes(None)
    assert str(info.value) == (
        f"model {transformer}: input 'input_ids' has a dynamic dimension 1 ('sequence'); "
        "give its shape with --input input_ids:1xN"
    )
    assert bert.input_shapes({"input_ids": (1, 24), "image": (1, 3, 32, 32)}) == {"input_ids": (1, 24)}
    net = ModelFile.open(mobilenet_onnx(tmp_path / "net.onnx"))
    with pytest.raises(ModelInputError, match=r"net\.onnx: input 'image' has static dimension 0 = 1, --input gives 4"):
        net.input_shapes({"image": (4, 3, 32, 32)})
    with OnnxRuntime() as rt, pytest.raises(ModelInputError, match="static dimension 0 = 1, --input gives 4"):
        rt.load(net.path, input_shapes={"image": (4, 3, 32, 32)})  # the engine says the same
    check_input_names([bert, net], {"input_ids": (1, 8), "image": (1, 3, 32, 32)})
    with pytest.raises(ModelInputError, match=r"no model has an input named 'input_id'; their inputs: bert\.onnx: "):
        check_input_names([bert, net], {"input_id": (1, 8)})


def test_external_data_outside_the_model_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    path = outside_data_onnx(tmp_path / "models" / "outside.onnx")
    with pytest.raises(ModelFileError, match=r"tensor 'w' keeps its data at '\.\./outside\.bin', outside"):
        ModelFile.open(path)
    with pytest.raises(RuntimeUnavailable):  # ONNX Runtime refuses it on its own too
        OnnxRuntime().load(path)


def test_onnxruntime_fills_token_ids_that_the_embedding_accepts(transformer: Path) -> None:
    rt = OnnxRuntime()
    with pytest.raises(ModelInputError, match="input 'input_ids' has a dynamic dimension 1 \\('sequence'\\)"):
        rt.load(transformer)
    rt.load(transformer, seed=1, input_shapes={"input_ids": (1, 24)})
    assert rt.input_shapes == {"input_ids": (1, 24)}
    rt.run()  # an index outside the embedding table would fail here
    rt.close()


def test_onnxruntime_keeps_latbench_artifacts_as_they_were(tmp_path: Path) -> None:
    path = tmp_path / "conv.onnx"
    make_conv_model(path, channels=4, hw=8)
    rt = OnnxRuntime()
    rt.load(path, seed=5)
    assert rt.input_shapes == {"input": (1, 3, 8, 8)}
    rt.run()
    timed = rt._binding.copy_outputs_to_cpu()[0]
    before = np.random.default_rng(5).standard_normal((1, 3, 8, 8)).astype(np.float32)  # the draws it always made
    np.testing.assert_array_equal(timed, rt.infer(before))
    rt.close()
    with pytest.raises(RuntimeUnavailable, match="Frobnicate"):
        rt.load(unsupported_op_onnx(tmp_path / "frob.onnx"))


def test_inputs_too_large_to_draw_are_refused_before_any_memory_is_taken(transformer: Path) -> None:
    specs = [InputSpec("x", ("n", 3), np.dtype(np.float32)), InputSpec("y", (2,), np.dtype(np.int64))]
    with pytest.raises(ModelInputError, match=r"inputs of 900,000,002 values \(x:300000000x3; y:2\) are over"):
        random_inputs(specs, {"x": (300_000_000, 3), "y": (2,)}, seed=0)
    with OnnxRuntime() as runtime, pytest.raises(ModelInputError, match="are over the"):
        runtime.load(transformer, input_shapes={"input_ids": [1, 300_000_000]})


def test_control_flow_is_read_from_the_graph_and_its_subgraphs(tmp_path: Path) -> None:
    """Finding 7: the parse sees an ``If`` cheaply, so a model whose cost follows its input values is named."""
    from tests.support.controlflow import control_flow_onnx

    assert ModelFile.open(control_flow_onnx(tmp_path / "branchy.onnx")).control_flow == ("If",)
    make_conv_model(tmp_path / "conv.onnx")
    assert ModelFile.open(tmp_path / "conv.onnx").control_flow == ()


def test_given_input_data_is_checked_against_each_input_and_cast_within_its_kind(tmp_path: Path) -> None:
    from latbench.agents.modelfile import InputData, InputSpec, model_inputs

    specs = [InputSpec("ids", (1, "seq"), np.dtype(np.int64)), InputSpec("x", (2,), np.dtype(np.float32))]
    np.savez(tmp_path / "d.npz", ids=np.array([[5, 7, 9]], dtype=np.int32), x=np.array([0.5, 1.5]))
    data = InputData.open(tmp_path / "d.npz")
    assert data.describe() == f"npz(sha256={sha256_file(tmp_path / 'd.npz')})"
    shapes = data.shapes_with({})
    assert shapes == {"ids": (1, 3), "x": (2,)}
    arrays = model_inputs("m.onnx", specs, shapes, 0, data.arrays)
    assert arrays["ids"].dtype == np.int64 and arrays["ids"].tolist() == [[5, 7, 9]]
    assert arrays["x"].dtype == np.float32
    with pytest.raises(ModelInputError, match=r"input data 'x' is 2, the input takes 3"):
        model_inputs("m.onnx", specs, {**shapes, "x": (3,)}, 0, data.arrays)
    with pytest.raises(ModelInputError, match=r"input 'ids': --input gives 1x4, d.npz holds 1x3"):
        data.shapes_with({"ids": (1, 4)})
    with pytest.raises(ModelInputError, match=r"input 'mask' is not in d.npz \(it holds 'ids', 'x'\)"):
        data.check_covers("m.onnx", ["ids", "mask"])
    np.savez(tmp_path / "f.npz", ids=np.zeros((1, 3)), x=np.zeros(2))
    with pytest.raises(ModelInputError, match="input data 'ids' is float64, the input takes int64"):
        model_inputs("m.onnx", specs, shapes, 0, InputData.open(tmp_path / "f.npz").arrays)
    (tmp_path / "bad.npz").write_text("no")
    with pytest.raises(ModelInputError, match=r"bad\.npz: not an \.npz file of arrays"):
        InputData.open(tmp_path / "bad.npz")
