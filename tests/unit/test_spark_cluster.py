"""The Spark standalone cluster of `musicbox up --spark-workers N`, and sessions on it."""

from __future__ import annotations

from pathlib import Path

from infra.local import spark_cluster
from infra.local.commands import with_layout
from musicbox.settings import REPO_ROOT, Settings
from musicbox.spark import cluster_config


def test_a_local_session_needs_nothing_more() -> None:
    assert cluster_config(Settings()) == {}
    assert cluster_config(Settings(spark_master="local[4]")) == {}


def test_a_cluster_session_sizes_its_executors_and_ships_our_packages() -> None:
    conf = cluster_config(Settings(spark_master="spark://127.0.0.1:7077", spark_executor_memory="512m"))
    assert conf["spark.executor.memory"] == "512m"
    # Executors' Python workers import batch.spark_als for mapInPandas.
    assert conf["spark.executorEnv.PYTHONPATH"] == str(REPO_ROOT)


def test_daemons_listen_on_their_own_ports_and_keep_state_under_var(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, spark_workers=2, spark_worker_ui_port=18081)
    master = spark_cluster.master(settings)
    workers = spark_cluster.workers(settings)
    assert [w.ui_port for w in workers] == [18081, 18082]
    assert spark_cluster.master_url(settings) == "spark://127.0.0.1:7077"
    argv = spark_cluster._argv(workers[1], settings)
    assert argv[0].endswith("pyspark/bin/spark-class") and argv[2] == "spark://127.0.0.1:7077"
    assert argv[argv.index("--cores") + 1] == "1" and argv[argv.index("--memory") + 1] == "1g"
    assert Path(argv[argv.index("--work-dir") + 1]).is_relative_to(tmp_path)
    assert spark_cluster._argv(master, settings)[1] == "org.apache.spark.deploy.master.Master"
    env = spark_cluster._env(settings)
    for name in ("SPARK_LOG_DIR", "SPARK_PID_DIR", "SPARK_LOCAL_DIRS"):
        assert Path(env[name]).is_relative_to(tmp_path), name  # not inside site-packages
    assert Path(env["SPARK_HOME"], "bin", "spark-class").is_file()


def test_the_command_line_layout_lists_every_broker_in_the_bootstrap() -> None:
    settings = with_layout(Settings(), brokers=3, spark_workers=2)
    assert settings.kafka_bootstrap == "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"
    assert settings.spark_workers == 2
    assert with_layout(Settings(), None, None) == Settings()


def test_the_metrics_config_serves_the_paths_prometheus_scrapes() -> None:
    props = dict(
        line.split("=", 1)
        for line in (spark_cluster.CONF_DIR / "metrics.properties").read_text().splitlines()
        if line and not line.startswith("#")
    )
    # The scrape paths end in a slash (without it the servlet answers with a redirect).
    assert props["master.sink.prometheusServlet.path"] + "/" == spark_cluster.MASTER_METRICS_PATH
    assert props["*.sink.prometheusServlet.path"] + "/" == spark_cluster.WORKER_METRICS_PATH
    assert props["applications.sink.prometheusServlet.path"] + "/" == spark_cluster.APPLICATIONS_METRICS_PATH
    prometheus = (spark_cluster.REPO_ROOT / "infra" / "prometheus" / "prometheus.yml").read_text()
    for path in (spark_cluster.MASTER_METRICS_PATH, spark_cluster.WORKER_METRICS_PATH):
        assert f"metrics_path: {path}\n" in prometheus
