"""serving/registry.py without a server: a version that failed to load is not retried while
its files stay the same, and is retried (and swapped in) once they change."""
import shutil

from serving_fakes import broken_copy, save_scale
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.config import model_server_config_pb2

from serving import registry as R


def test_a_failed_version_is_retried_only_after_its_files_change(tmp_path, monkeypatch):
    base = tmp_path / "scale"
    save_scale(base / "1", 2.0)
    broken_copy(base / "1", base / "2", "truncated")
    loads = []

    class CountingServable(R.Servable):
        def __init__(self, name, version, path):
            loads.append(version)
            super().__init__(name, version, path)

    monkeypatch.setattr(R, "Servable", CountingServable)
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.config.add(name="scale", base_path=str(base), model_platform="tensorflow")
    registry = R.ModelRegistry(config)
    latest = model_pb2.ModelSpec(name="scale")

    # Newest first: 2 fails (END with its error), 1 serves.
    assert loads == [2, 1] and registry.servable(latest).version == 1
    (version, state, message, _), _ = registry.status("scale")
    assert (version, state) == (2, R.State.END) and message.startswith(f"Failed to load {base / '2'}")

    registry.poll()  # unchanged files: no second attempt, the same error
    assert loads == [2, 1] and registry.status("scale")[0][2] == message

    shutil.rmtree(base / "2")
    save_scale(base / "2", 3.0)  # the pusher writes version 2 again, whole this time
    registry.poll()
    assert loads == [2, 1, 2] and registry.servable(latest).version == 2
    assert registry.status("scale")[0][:3] == (2, R.State.AVAILABLE, "")
