#!/usr/bin/env bash
# Set up everything musicbox needs on a fresh machine; idempotent and quick when done already.
#   Debian packages: prometheus, kcat, docker-compose (compose-file validation only), Java 17, Maven
#   .venv:           pinned Python packages (requirements-dev.txt) + musicbox in editable mode
#   var/jars/:       Kafka broker and Spark Kafka connector closures, the JMX exporter agent (Maven)
# Downloads are cached outside git: pip in ~/.cache/pip, Maven in ~/.m2.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
python=${PYTHON:-python3}
kafka_version=${MUSICBOX_KAFKA_VERSION:-4.1.1}
step() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# 1. Debian packages (apt-get update first: a fresh machine has no package lists).
need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
command -v kcat >/dev/null || need+=(kcat)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
if [ ${#need[@]} -gt 0 ]; then
  step "installing Debian packages: ${need[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# 2. The virtualenv, re-installed only when the pins change.
stamp_src=$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.musicbox-stamp 2>/dev/null)" != "$stamp_src" ]; then
  step "installing Python packages into .venv (pinned in requirements*.txt)"
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements-dev.txt
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$stamp_src" > .venv/.musicbox-stamp
fi

# 3. Jars from Maven Central, reused when present.
resolve() {  # name, pom folder, marker jar, extra maven args
  local name=$1 pom=$2 marker=$3; shift 3
  if ! ls "var/jars/$name/"$marker >/dev/null 2>&1; then
    step "resolving $name jars with Maven into var/jars/$name"
    rm -rf "var/jars/$name.tmp"
    mvn -q -B -f "$pom/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$root/var/jars/$name.tmp" "$@"
    rm -rf "var/jars/$name" && mv "var/jars/$name.tmp" "var/jars/$name"
  fi
}
mkdir -p var/jars
resolve kafka infra/maven/kafka-broker "kafka_2.13-$kafka_version.jar" "-Dkafka.version=$kafka_version"
spark_version=$(.venv/bin/python -c "import pyspark; print(pyspark.__version__)")
resolve spark-kafka infra/maven/spark-kafka "spark-sql-kafka-0-10_2.13-$spark_version.jar" "-Dspark.version=$spark_version"
resolve jmx-exporter infra/maven/jmx-exporter "jmx_prometheus_javaagent-*.jar"
step "setup complete (java: $(java -version 2>&1 | head -1), pyspark $spark_version, kafka $kafka_version)"
