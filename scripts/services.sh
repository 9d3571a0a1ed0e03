#!/usr/bin/env bash
# Start the services the tests talk to, if they are not running: Redis, PostgreSQL and RabbitMQ on loopback.
set -euo pipefail
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

# Debian's chromium: the dashboard test drives it headless (tests/integration/test_dashboard.py).
if [ ! -x /usr/bin/chromium ]; then
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  command -v redis-server >/dev/null || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq redis-server; }
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null; then
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq postgresql
  fi
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
fi

# RabbitMQ: the dead-worker test runs on an AMQP broker too (tests/integration/test_faults.py).
amqp_up() { timeout 1 bash -c '</dev/tcp/127.0.0.1/5672' 2>/dev/null; }
if ! amqp_up; then
  if ! command -v rabbitmq-server >/dev/null; then
    $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server
  fi
  $SUDO service rabbitmq-server start >/dev/null 2>&1 || $SUDO rabbitmq-server -detached
fi

for _ in $(seq 300); do
  redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && pg_isready -h 127.0.0.1 -q && amqp_up && exit 0
  sleep 0.2
done
echo "Redis, PostgreSQL or RabbitMQ did not come up on 127.0.0.1" >&2
exit 1
