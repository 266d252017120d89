"""README: "`bert/model.py` is the whole encoder, top to bottom, with tensor shapes in every docstring" — every
module's forward (and every function that takes or returns tensors) says what shapes go in and come out."""

import ast
import re
from pathlib import Path

MODEL = Path(__file__).resolve().parent.parent / "bert" / "model.py"
SHAPE = re.compile(r"\[[A-Z0-9][A-Za-z0-9 ,+×*/]*\]")  # [B, T, H], [M, H], [B, N, T, T], ...


def _tensor_functions() -> list[ast.FunctionDef]:
    """Every function in bert/model.py whose signature names torch.Tensor (arguments or result)."""
    found = []
    for node in ast.walk(ast.parse(MODEL.read_text())):
        if isinstance(node, ast.FunctionDef) and node.name != "__init__":
            if "Tensor" in ast.unparse(node.args) + (ast.unparse(node.returns) if node.returns else ""):
                found.append(node)
    return found


def test_every_tensor_function_in_model_py_writes_its_shapes_in_its_docstring():
    functions = _tensor_functions()
    assert len(functions) >= 15  # the embeddings, attention, layers, encoder, pooler, model and their helpers
    missing = [f"{f.name} (line {f.lineno})" for f in functions if not SHAPE.search(ast.get_docstring(f) or "")]
    assert not missing, f"no tensor shape in the docstring of: {', '.join(missing)}"
