"""The code version in each component's cache key: which edits change it, and which do not."""
import shutil

from pipeline import code_version


def project(root):
    """A package `pkg`: `a` imports `b` (as a name of the package), `c` is imported by nobody."""
    (root / "pkg").mkdir()
    files = {"__init__.py": "", "a.py": "from pkg import b\n\nX = b.Y\n", "b.py": "import os\n\nY = 1\n",
             "c.py": "Z = 2\n"}
    for name, text in files.items():
        (root / "pkg" / name).write_text(text)
    return str(root)


def test_the_hash_follows_the_modules_a_module_imports_and_nothing_else(tmp_path):
    root = project(tmp_path)
    before = code_version.source_hash(["pkg.a"], root=root)
    assert code_version.source_hash(["pkg.a"], root=root) == before  # deterministic
    (tmp_path / "pkg" / "c.py").write_text("Z = 3\n")  # not imported by a
    assert code_version.source_hash(["pkg.a"], root=root) == before
    (tmp_path / "pkg" / "b.py").write_text("import os\n\nY = 2\n")  # imported by a
    after_b = code_version.source_hash(["pkg.a"], root=root)
    assert after_b != before
    (tmp_path / "pkg" / "__init__.py").write_text("# the package runs first\n")
    assert code_version.source_hash(["pkg.a"], root=root) != after_b
    assert code_version.source_hash(["os", "no.such.module"], root=root) == code_version.source_hash([], root=root)


def test_the_hash_follows_files_by_content_and_directories_by_their_files(tmp_path):
    schema, data = tmp_path / "schema.pbtxt", tmp_path / "data"
    schema.write_text("feature {}\n")
    data.mkdir()
    (data / "u.data").write_text("1\t2\t3\n")
    before = code_version.source_hash([], [str(schema), str(data)], root=str(tmp_path))
    schema.write_text("feature { name: 'x' }\n")
    after_schema = code_version.source_hash([], [str(schema), str(data)], root=str(tmp_path))
    assert after_schema != before
    (data / "u.data").write_text("1\t2\t3\n4\t5\t6\n")
    assert code_version.source_hash([], [str(schema), str(data)], root=str(tmp_path)) != after_schema


def test_a_ranking_edit_changes_the_ranking_trainers_version_only(tmp_path):
    shutil.copytree(f"{code_version.ROOT}/models", tmp_path / "models")
    retrieval, ranking, features = (["models.retrieval.model"], ["models.ranking.export"], ["models.features"])
    before = [code_version.source_hash(m, root=str(tmp_path)) for m in (retrieval, ranking, features)]
    with open(tmp_path / "models" / "ranking" / "constants.py", "a") as f:
        f.write("# a changed knob\n")
    after = [code_version.source_hash(m, root=str(tmp_path)) for m in (retrieval, ranking, features)]
    assert after[0] == before[0] and after[1] != before[1] and after[2] == before[2]
    with open(tmp_path / "models" / "features.py", "a") as f:
        f.write("# a changed feature\n")
    assert all(a != b for a, b in zip(after, [code_version.source_hash(m, root=str(tmp_path))
                                              for m in (retrieval, ranking, features)], strict=True))


def test_stamp_makes_the_version_an_exec_property_that_ml_metadata_records_and_the_cache_keys_on(tmp_path):
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto.metadata_store_pb2 import Execution
    from tfx import v1 as tfx

    from pipeline.lineage import _props

    schema = tmp_path / "schema.pbtxt"
    schema.write_text('feature { name: "x" type: INT }\n')
    component = tfx.components.ImportSchemaGen(schema_file=str(schema))
    code_version.stamp(component)
    expected = code_version.source_hash([component.executor_spec.executor_class.__module__], [str(schema)])
    assert component.exec_properties["code_version"] == expected != code_version.source_hash([])
    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(str(tmp_path / "metadata.db"))
    pipeline = tfx.dsl.Pipeline(pipeline_name="p", pipeline_root=str(tmp_path / "root"), components=[component],
                                enable_cache=True, metadata_connection_config=connection)
    for _ in range(2):  # the second run is the first one's, from the cache
        tfx.orchestration.LocalDagRunner().run(pipeline)
    executions = metadata_store.MetadataStore(connection).get_executions()
    assert [_props(e)["code_version"] for e in executions] == [expected, expected]
    assert [e.last_known_state for e in executions] == [Execution.COMPLETE, Execution.CACHED]
