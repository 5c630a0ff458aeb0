"""What a user meets when `musicbox up` cannot start: a port someone else holds, no Java.
Nothing here starts a service (Java is missing, or the port check refuses first)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.local.errors import StackError
from infra.local.processes import listening_inodes, port_holder, require_free
from musicbox.cli import main
from tests.fixtures.ports import free_ports

TCP_TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2384 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 111 1 0
   1: 00000000:2384 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 222 1 0
   2: 0100007F:2384 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 333 1 0
   3: 0100007F:2385 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 444 1 0
   4: 00000000000000000000000001000000:2384 00000000000000000000000000000000:0000 0A 0 0 0 1000 0 555
"""


def test_listening_inodes_reads_the_listeners_of_one_port() -> None:
    # 0x2384 = 9092. Rows 0 (loopback), 1 (every address) and 4 (IPv6 loopback) listen on it;
    # row 2 is a connection from it (state 01), row 3 listens on 9093.
    assert listening_inodes(TCP_TABLE, 9092) == {"111", "222", "555"}
    assert listening_inodes(TCP_TABLE, 9093) == {"444"}
    assert listening_inodes(TCP_TABLE, 9094) == set()


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port this test process listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_port_holder_names_the_process_listening(held_port: int) -> None:
    holder = port_holder(held_port)
    assert holder is not None and holder.startswith(f"pid {os.getpid()} (")
    assert "python" in holder or "pytest" in holder


def test_a_port_in_use_is_an_error_naming_the_port_and_its_holder(held_port: int) -> None:
    with pytest.raises(StackError) as error:
        require_free("127.0.0.1", held_port, "Prometheus", "MUSICBOX_PROMETHEUS_PORT")
    message = str(error.value)
    assert f"port 127.0.0.1:{held_port} (Prometheus) is in use by pid {os.getpid()} (" in message
    assert "MUSICBOX_PROMETHEUS_PORT" in message


def test_a_free_port_passes() -> None:
    [port] = free_ports(1)
    require_free("127.0.0.1", port, "Kafka", "MUSICBOX_KAFKA_BOOTSTRAP")


@pytest.fixture
def own_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """MUSICBOX_* for a stack of this test: its own var dir and free ports (never the defaults)."""
    kafka, controller, prometheus = free_ports(3)
    var_dir = tmp_path / "var"
    monkeypatch.setenv("MUSICBOX_VAR_DIR", str(var_dir))
    monkeypatch.setenv("MUSICBOX_KAFKA_BOOTSTRAP", f"127.0.0.1:{kafka}")
    monkeypatch.setenv("MUSICBOX_KAFKA_CONTROLLER_PORT", str(controller))
    monkeypatch.setenv("MUSICBOX_PROMETHEUS_PORT", str(prometheus))
    return var_dir


def test_up_without_java_says_to_install_java_17(
    own_settings: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no java on it
    monkeypatch.delenv("JAVA_HOME", raising=False)
    assert main(["up"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = err.splitlines()
    assert line.startswith("musicbox up: error: no `java` on PATH") and "install Java 17" in line
    assert not list((own_settings / "run").glob("*.pid"))  # nothing was started
